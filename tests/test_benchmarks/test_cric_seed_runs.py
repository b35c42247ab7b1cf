"""benchmarks/cric_seed_runs.py: the suites of issue 19's comparison on the
real CRIC fields (equal budget per row, one split, the same test fields) and
a smoke run of a row end to end (train, test, table, resume)."""
import json
import os
import time
from pathlib import Path

import pytest
from mmengine.config import Config

from benchmarks import cric_seed_runs as runner
from conftest import ensure_cric_coco

ROOT = Path(__file__).resolve().parents[2]


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
    # an EMA teacher that follows a from-scratch BN network within 600
    # iterations: BN buffers averaged too, horizon ~100 iterations
    for label in ('Mean Teacher 25 %', 'Mean Teacher 50 %'):
        (hook, ) = cfgs[label].custom_hooks
        assert hook == dict(type='MeanTeacherHook', momentum=0.01,
                            skip_buffer=False), hook


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
    ensure_cric_coco(shared_data)
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


def test_smoke_row_end_to_end_and_resume(shared_data, tmp_path):
    ensure_cric_coco(shared_data)
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


def test_interrupted_training_resumes_with_a_wellformed_command(
        tmp_path, monkeypatch):
    """A run with a checkpoint but no result.json resumes: ``--resume`` is a
    flag of its own and ``--work-dir`` keeps its value."""
    out = tmp_path / 'row' / 'seed1'
    out.mkdir(parents=True)
    (out / 'iter_300.pth').write_bytes(b'x')
    calls = []

    def fake_run(cmd, log):
        calls.append([str(c) for c in cmd])
        if 'tools/test.py' in cmd:
            d = Path(cmd[cmd.index('--work-dir') + 1]) / '20260101_000000'
            d.mkdir(parents=True)
            (d / '20260101_000000.json').write_text(
                json.dumps({'coco/bbox_mAP': 0.5}) + '\n')
        else:
            (out / 'iter_600.pth').write_bytes(b'x')
        return 1.0, 2.0

    monkeypatch.setattr(runner, 'run', fake_run)
    res = runner.one_run('python', 'cfg.py', str(tmp_path / 'row'), 1)
    train = calls[0]
    assert train[:3] == ['python', 'tools/train.py', 'cfg.py']
    assert '--resume' in train
    assert train[train.index('--work-dir') + 1] == str(out)
    assert train[train.index('--cfg-options') + 1] == 'randomness.seed=1'
    # the newest checkpoint is tested, the result cached
    assert calls[1][2:4] == ['cfg.py', str(out / 'iter_600.pth')]
    assert res['metrics'] == {'coco/bbox_mAP': 0.5}
    assert (out / 'result.json').is_file()


def test_slide_suite_fields_labels_and_table_columns(tmp_path):
    suite = runner.SUITES['slide-screening']
    assert suite['runner'] == 'slide'
    assert [src for _, src in suite['rows']][:2] == ['max', 'topk_mean']
    mil = Config.fromfile(str(ROOT / suite['rows'][2][1]))
    assert mil.model.aggregator.type == 'AttentionMILAggregator'
    assert mil.train_cfg.max_epochs == 10
    # the detector of the retinanet-init suite, its 512x380 reading scale
    assert suite['detector']['config'] == runner.SUITES['retinanet-init'][
        'rows'][0][1]
    opts = suite['infer_opts']
    assert float(opts[opts.index('--target-mpp') + 1]) * 512 == pytest.approx(
        suite['ref_width'])
    # positive = any marked cell of a non-NILM category
    coco = dict(
        images=[dict(id=i, file_name=f'f{i}.jpg', width=688, height=510)
                for i in range(1, 5)],
        categories=[dict(id=1, name='LSIL'), dict(id=2, name='NILM')],
        annotations=[dict(id=1, image_id=1, category_id=1),
                     dict(id=2, image_id=2, category_id=2),
                     dict(id=3, image_id=3, category_id=1),
                     dict(id=4, image_id=3, category_id=2)])
    (tmp_path / 'a.json').write_text(json.dumps(coco))
    fields = runner.field_slides(str(tmp_path / 'a.json'))
    assert [(f['slide'], f['label']) for f in fields] == [
        ('f1', 'positive'), ('f2', 'negative'), ('f3', 'positive'),
        ('f4', 'negative')]
    assert [f['slide'] for f in runner.smoke_subset(fields, 2)] == [
        'f1', 'f2']
    # the table: the three columns on the test fields, the pooled
    # val+test ones, and the CPU minutes of detection + row
    res = [dict(metrics={'slide/auc': a, 'slide/sens_at_spec90': .5,
                         'slide/top10_hit_rate': .8, 'pooled/auc': .6,
                         'pooled/sens_at_spec90': .4},
                train_wall_s=120., train_cpu_s=60.) for a in (.7, .8, .9)]
    text = runner.table([('max cell score (baseline)', res)], [0, 1, 2],
                        suite['columns'], suite['time_column'])
    head, _, row = text.splitlines()
    assert [c.strip() for c in head.split('|')[1:-1]] == [
        'row', 'seeds', 'field AUC', 'sens. @ spec. 0.9', 'top-10 hit rate',
        'field AUC, val+test fields', 'sens. @ spec. 0.9, val+test',
        'min / seed (wall / CPU): detection of all fields + row']
    assert [c.strip() for c in row.split('|')[1:-1]] == [
        'max cell score (baseline)', '3', '80.0 +- 10.0', '50.0 +- 0.0',
        '80.0 +- 0.0', '60.0 +- 0.0', '40.0 +- 0.0', '2.0 / 1.0']


def test_pcn_suite_rows_share_start_budget_and_test_fields():
    suite = runner.SUITES['pcn']
    rows = suite['rows']
    assert [r[0] for r in rows] == [
        'baseline (same fine-tuning, no PCN)', '+ranking', '+RCC',
        '+ranking +RCC']
    cfgs = [Config.fromfile(str(ROOT / r[1])) for r in rows]
    for cfg in cfgs:
        # equal budget, optimiser, start and data (Table 2: only the
        # losses differ)
        assert cfg.train_cfg.max_epochs == 2
        assert cfg.param_scheduler == []
        assert cfg.optim_wrapper.optimizer.type == 'Adam'
        assert cfg.optim_wrapper.optimizer.lr == 1e-4
        assert cfg.train_dataloader.batch_size == 4
        assert _train_files(cfg) == ['annotations/train.json']
        assert cfg.load_from.endswith('retinanet-init/retinanet_r18-w32_fpn_'
                                      'adam-12e_1xb4_cric-cervix-512/seed0/'
                                      'epoch_12.pth')
        assert cfg.test_dataloader.dataset.ann_file == 'annotations/test.json'
        assert cfg.test_dataloader.dataset.data_root == 'data/cric-cervix/'
        assert [e.type for e in cfg.test_evaluator] == [
            'CocoMetric', 'PointHitMetric']
        assert {e.ann_file for e in cfg.test_evaluator} == {
            'data/cric-cervix/annotations/test.json'}
        assert cfg.model.backbone.base_channels == 32
    assert cfgs[0].model.type == 'RetinaNet'
    assert all(c.model.type == 'PCNRetinaNet' for c in cfgs[1:])
    assert [(c.model.loss_rank is not None, c.model.loss_rcc is not None)
            for c in cfgs[1:]] == [(True, False), (False, True),
                                   (True, True)]
    # the paper's weights, K and margin in every PCN row
    for cfg in cfgs[1:]:
        assert cfg.model.distill_cfg.topk == 10
        if cfg.model.loss_rank:
            assert cfg.model.loss_rank.loss_weight == 0.25
            assert cfg.model.loss_rank.margin == 0.05
        if cfg.model.loss_rcc:
            assert cfg.model.loss_rcc.loss_weight == 1.0
    # seed k starts from seed k's retinanet-init detector
    (opt, ) = suite['options']
    assert opt.startswith('load_from={work_dir}/retinanet-init/')
    assert opt.endswith('/seed{seed}/epoch_12.pth')
    assert suite['seed_requires'][0] == opt[len('load_from='):]
    # one PCN for the three PCN rows: the last epoch of the prepared one,
    # trained on the train fields' patches at the stage-3 patch size
    pcn = Config.fromfile(str(ROOT / runner._PCN))
    ckpt = f'{{suite_dir}}/pcn/epoch_{pcn.train_cfg.max_epochs}.pth'
    assert all(r[2] == ['model.pcn_checkpoint=' + ckpt] for r in rows[1:])
    assert len(rows[0]) == 2
    patches, train = suite['prepare']
    assert train['creates'] == ckpt
    assert suite['smoke_prepare'][0]['creates'] == ckpt
    cmd = patches['cmd']
    assert cmd[cmd.index('--splits') + 1:cmd.index('--img-dir')] == [
        'train', 'val']
    assert cmd[cmd.index('--forbid-fields') + 1] == (
        'data/cric-cervix/annotations/test.json')
    size = int(cmd[cmd.index('--patch-size') + 1])
    out = cmd[cmd.index('--out-dir') + 1]
    assert pcn.train_dataloader.dataset.data_root == out + '/'
    assert pcn.train_dataloader.dataset.ann_file == 'meta/train.txt'
    assert pcn.val_dataloader.dataset.ann_file == 'meta/val.txt'
    assert all(c.model.patch_cfg.size == size for c in cfgs[1:])


def test_pcn_suite_refuses_without_start_detector(tmp_path):
    # before any preparation (the PCN is not trained for nothing)
    with pytest.raises(SystemExit, match='--suite retinanet-init'):
        runner.main(['--suite', 'pcn', '--work-dir', str(tmp_path),
                     '--seeds', '7'])
    assert not (tmp_path / 'pcn').exists()


def test_pcn_smoke_row_end_to_end_and_resume(shared_data, tmp_path):
    ensure_cric_coco(shared_data)
    work = tmp_path / 'ev'
    args = ['--suite', 'pcn', '--smoke', '--rows', '3', '--threads', '1',
            '--work-dir', str(work)]
    # no retinanet-init checkpoint needed: the smoke starts from random
    runner.main(args)
    suite = work / 'smoke' / 'pcn'
    assert (suite / 'pcn' / 'epoch_3.pth').is_file()
    results = json.loads((suite / 'results.json').read_text())
    (res, ) = results['+ranking +RCC']
    assert res['checkpoint'].endswith('epoch_1.pth')
    for key in ('point/abnormal/sens@1fppi', 'point/abnormal/AP'):
        assert key in res['metrics'], sorted(res['metrics'])
    log = (Path(res['checkpoint']).parent / 'train.log').read_text()
    assert 'loss_rank' in log and 'loss_rcc' in log
    assert str(suite / 'pcn' / 'epoch_3.pth') in log
    assert results['baseline (same fine-tuning, no PCN)'] == []
    t0 = time.time()
    runner.main(args)
    assert time.time() - t0 < 20


def test_ld_wsccd_suite_rows_share_budget_teacher_and_test_fields():
    """Table 4 rows: one CPU student budget, the one prepared teacher for
    the distilled rows, COCO AP, the point metric and CorLoc on the test
    fields."""
    suite = runner.SUITES['ld-wsccd']
    rows = suite['rows']
    assert [r[0] for r in rows] == [
        'SSD', 'SSD + LDM', 'SSD + MIL detector',
        'LD-WSCCD (SSD + LDM + MIL)']
    cfgs = [Config.fromfile(str(ROOT / r[1])) for r in rows]
    for (label, _, *opts), cfg in zip(rows, cfgs):
        assert cfg.train_cfg.max_epochs == 24
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.optim_wrapper.optimizer.lr == 1e-3
        ds = cfg.train_dataloader.dataset
        assert (ds.type, ds.ann_file, ds.box_fraction) == (
            'WeakCocoDataset', 'annotations/train.json', 1.0)
        assert cfg.test_dataloader.dataset.ann_file == 'annotations/test.json'
        assert [e.type for e in cfg.test_evaluator] == [
            'CocoMetric', 'CorLocMetric', 'PointHitMetric']
        distilled = cfg.model.type == 'FGDDistiller'
        assert distilled == ('LDM' in label)
        # the distilled rows read the suite's teacher, the others need none
        assert opts == ([['model.teacher_ckpt={suite_dir}/teacher/'
                          'epoch_20.pth']] if distilled else [])
    (teacher, ) = suite['prepare']
    assert teacher['creates'] == '{suite_dir}/teacher/epoch_20.pth'
    tcfg = Config.fromfile(str(ROOT / teacher['cmd'][1]))
    assert tcfg.train_cfg.max_epochs == 20
    assert tcfg.train_dataloader.dataset.ann_file == 'annotations/train.json'
    assert suite['columns'][-1] == ('CorLoc', 'corloc/mean', 100)
