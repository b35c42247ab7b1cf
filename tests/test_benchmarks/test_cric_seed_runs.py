"""benchmarks/cric_seed_runs.py: the suites of issue 19's comparison on the
real CRIC fields (equal budget per row, one split, the same test fields) and
a smoke run of a row end to end (train, test, table, resume)."""
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]


def _load_runner():
    spec = importlib.util.spec_from_file_location(
        'cric_seed_runs', ROOT / 'benchmarks' / 'cric_seed_runs.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


runner = _load_runner()


def _train_files(cfg):
    ds = cfg.train_dataloader.dataset
    return [d.ann_file for d in ds.datasets] if 'datasets' in ds else [
        ds.ann_file]


def test_semi_suite_rows_share_budget_split_and_test_fields():
    rows = runner.SUITES['semi-dual-align']['rows']
    assert len(rows) == 6
    cfgs = {label: Config.fromfile(str(ROOT / path)) for label, path in rows}
    budgets = {c.train_cfg.max_iters for c in cfgs.values()}
    assert budgets == {600}, budgets
    for label, cfg in cfgs.items():
        pct = label.split()[-2]
        files = _train_files(cfg)
        assert files[0] == f'annotations/semi/train_labeled_{pct}.json'
        if not label.startswith('supervised'):
            # one unlabeled pool for every semi row (Sec. 3.2)
            assert files[1:] == ['annotations/semi/train_unlabeled.json']
        else:
            assert len(files) == 1
        assert cfg.test_dataloader.dataset.ann_file == 'annotations/test.json'
        assert cfg.test_dataloader.dataset.data_root == 'data/cric-cervix/'
        types = [e.type for e in cfg.test_evaluator]
        assert types == ['CocoMetric', 'IoURangeCocoMetric', 'PointHitMetric']
        assert {e.ann_file for e in cfg.test_evaluator} == {
            'data/cric-cervix/annotations/test.json'}
    # the same labeled images per step: batch 2 supervised, 2 + 2 semi
    sup = cfgs['supervised 25 %']
    semi = cfgs['dual alignment 25 %']
    assert sup.train_dataloader.batch_size == 2
    assert semi.train_dataloader.batch_size == 4
    assert semi.train_dataloader.sampler.source_ratio == [1, 1]
    assert cfgs['Mean Teacher 50 %'].model.type == 'SemiBaseDetector'
    assert cfgs['dual alignment 50 %'].model.type == 'DualAlignFasterRCNN'


def test_roi_suite_rows_share_data_cache_and_budget():
    rows = runner.SUITES['roi-cls']['rows']
    assert len(rows) == 7
    cfgs = [Config.fromfile(str(ROOT / path)) for _, path in rows]
    for cfg in cfgs:
        for split in ('train', 'val', 'test'):
            ds = cfg[f'{split}_dataloader'].dataset
            assert ds.data_root == 'data/cric-roi-fields/'
            assert ds.feature_cache == 'features/r18-w32-dino-cric-tiles_64/'
            assert ds.cell_source == 'annotations'
        # the CRIC-tile DINO encoder (train + val tiles only)
        assert cfg.cell_encoder.init_cfg.checkpoint == (
            'data/pretrained/dino_r18-w32_cric-tiles.pth')
        assert cfg.cell_encoder.base_channels == 32
        assert cfg.train_cfg.max_epochs == 20
        assert cfg.test_evaluator.type == 'ROIClassificationMetric'
    # Table 1 models: one global branch type per baseline
    types = [c.model.global_branch.type for c in cfgs]
    assert types.count('RNNAggregator') == 3
    assert 'GatedAttentionMIL' in types
    keys = [k for _, k, _ in runner.SUITES['roi-cls']['columns']]
    assert keys[:2] == ['roi/accuracy', 'roi/macro_roc_auc']


def test_roi_suite_refuses_without_dino_encoder(shared_data, tmp_path,
                                                monkeypatch):
    _ensure_cric(shared_data)
    steps = [dict(s) for s in runner.SUITES['roi-cls']['prepare']]
    assert steps[1]['requires'] == (
        'data/pretrained/dino_r18-w32_cric-tiles.pth')
    assert 'r18-w32-dino-cric-tiles_64' in steps[1]['creates']
    # as on a machine without the DINO encoder (whatever this one holds)
    steps[1]['requires'] = str(tmp_path / 'missing' / 'backbone.pth')
    steps[1]['creates'] = str(tmp_path / 'missing' / 'cache.pth')
    monkeypatch.setitem(runner.SUITES['roi-cls'], 'prepare', steps)
    with pytest.raises(SystemExit, match='tools/cric_dino_init.sh'):
        runner.main(['--suite', 'roi-cls', '--work-dir', str(tmp_path)])
    assert not (tmp_path / 'roi-cls' / 'table.md').exists()


def test_checkpoints_sorted_numerically(tmp_path):
    assert runner.checkpoints(str(tmp_path)) == []
    for n in (100, 20, 600):
        (tmp_path / f'iter_{n}.pth').write_bytes(b'')
    assert [Path(p).name for p in runner.checkpoints(str(tmp_path))] == [
        'iter_20.pth', 'iter_100.pth', 'iter_600.pth']
    for n in (2, 12):
        (tmp_path / f'epoch_{n}.pth').write_bytes(b'')
    assert Path(runner.checkpoints(str(tmp_path))[-1]).name == 'epoch_12.pth'


def test_table_mean_std_columns():
    res = [dict(metrics={'coco/bbox_mAP': v, 'point/abnormal/sens@1fppi': .5},
                train_wall_s=120., train_cpu_s=60.) for v in (.1, .2, .3)]
    text = runner.table([('a', res), ('b', [])], [0, 1, 2])
    lines = text.splitlines()
    assert lines[0].startswith('| row | seeds | AP | AP50 |')
    a = [c.strip() for c in lines[2].split('|')[1:-1]]
    assert a[:3] == ['a', '3', '20.0 +- 10.0']
    assert a[3] == 'n/a'  # AP50 missing in every seed
    assert a[-1] == '2.0 / 1.0'
    assert [c.strip() for c in lines[3].split('|')[1:-1]][-1] == 'n/a'


def _ensure_cric(shared_data):
    if (ROOT / 'data/cric-cervix/annotations/test.json').is_file():
        return
    src = shared_data / 'cric_cervix'
    subprocess.run([
        sys.executable, 'tools/dataset_converters/cric_to_coco.py', '--csv',
        str(src / 'classifications.csv'), '--img-dir', str(src / 'images'),
        '--img-dir', str(src / 'native'), '--out-dir', 'data/cric-cervix'
    ], cwd=ROOT, check=True, capture_output=True)


def test_smoke_row_end_to_end_and_resume(shared_data, tmp_path):
    _ensure_cric(shared_data)
    work = tmp_path / 'ev'
    args = ['--suite', 'semi-dual-align', '--smoke', '--rows', '0',
            '--threads', '1', '--work-dir', str(work)]
    runner.main(args)
    suite = work / 'smoke' / 'semi-dual-align'
    text = (suite / 'table.md').read_text()
    assert text.startswith('SMOKE RUN')
    head = next(ln for ln in text.splitlines() if ln.startswith('| row'))
    assert [c.strip() for c in head.split('|')[1:-1]] == [
        'row', 'seeds', 'AP', 'AP50', 'AR@100', 'abn. recall @1 FP/img',
        'abn. recall @4 FP/img', 'abnormal AP (points)',
        'mAP IoU .10:.70 (paper)', 'train min (wall / CPU)']
    row = next(ln for ln in text.splitlines()
               if ln.startswith('| supervised 25 %'))
    assert '| 1 |' in row and 'n/a' not in row
    results = json.loads((suite / 'results.json').read_text())
    (res, ) = results['supervised 25 %']
    assert res['checkpoint'].endswith('iter_2.pth')
    for key in ('coco/bbox_mAP', 'point/abnormal/sens@1fppi',
                'iou_range/bbox_mAP'):
        assert key in res['metrics'], sorted(res['metrics'])
    assert results['dual alignment 25 %'] == []
    # the split was prepared once, with the fixed seed
    assert (ROOT / 'data/cric-cervix/annotations/semi/'
            'train_unlabeled.json').is_file()
    # resumable: a finished row is not run again
    t0 = time.time()
    stamp = os.path.getmtime(res['checkpoint'])
    runner.main(args)
    assert time.time() - t0 < 20
    assert os.path.getmtime(res['checkpoint']) == stamp
