"""Slide-call tools end to end on hand-made slide_infer outputs
(``<slide>/cells_topk.npz`` + ``report.json``) and labels CSVs:
calibrate_thresholds.py, eval_slides.py (aggregator and MIL model, top-k
hit rate against COCO cell boxes), and the attention-MIL config trained by
tools/train.py and tested by tools/test.py. Each tool run is a subprocess
(their logic: cervdet.evaluation.slide_eval)."""
import json
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.evaluation.metrics.slide_screening_metric import call_grade
from conftest import ROOT, run_tool

MIL_CFG = ROOT / 'configs' / 'slide_screening' / \
    'attn-mil_topk-32_cervical-fields.py'
CAL = ROOT / 'tools' / 'slide' / 'calibrate_thresholds.py'
EVAL = ROOT / 'tools' / 'slide' / 'eval_slides.py'


def _run(tool, args):
    """The tool's exit code, stdout and stderr."""
    return run_tool([sys.executable, tool] + [str(a) for a in args],
                    check=False)


# slide -> (label, cell scores, cell boxes xyxy); max scores
# A .95, B .6, F .8 (positives); C .7, D 0 (no cell), E .4 (negatives)
SLIDES = {
    'A': ('HSIL', [0.2, 0.95, 0.5],
          [[0, 0, 10, 10], [100, 100, 140, 140], [900, 900, 940, 940]]),
    'B': ('LSIL', [0.6, 0.3], [[0, 0, 10, 10], [480, 480, 560, 560]]),
    'F': ('ASC-US', [0.8], [[2000, 2000, 2040, 2040]]),
    'C': ('NILM', [0.7, 0.1], [[5, 5, 50, 50], [60, 60, 90, 90]]),
    'D': ('NILM', [], []),
    'E': ('NILM', [0.4], [[7, 7, 30, 30]]),
}


def write_slide(out, name, scores, boxes, feats=None, slide_scores=None):
    d = out / name
    d.mkdir(parents=True)
    k = len(scores)
    feats = np.zeros((k, 4), np.float32) if feats is None else feats
    np.savez(d / 'cells_topk.npz',
             bboxes=np.asarray(boxes, np.float32).reshape(k, 4),
             scores=np.asarray(scores, np.float32),
             labels=np.ones(k, np.int64), feats=feats,
             classes=np.array(['NILM', 'LSIL', 'HSIL']))
    if slide_scores is None:
        slide_scores = dict(max=float(max(scores)) if k else 0.)
    (d / 'report.json').write_text(json.dumps(dict(
        slide=name, slide_scores=slide_scores)))


@pytest.fixture
def hand_set(tmp_path):
    out = tmp_path / 'slides'
    for name, (_, scores, boxes) in SLIDES.items():
        write_slide(out, name, scores, boxes)
    labels = tmp_path / 'labels.csv'
    labels.write_text('slide,label\n' + ''.join(
        f'{n},{v[0]}\n' for n, v in SLIDES.items()))
    coco = dict(
        images=[dict(id=i + 1, file_name=f'{n}.svs', width=5000,
                     height=5000) for i, n in enumerate(SLIDES)],
        categories=[dict(id=1, name='NILM'), dict(id=2, name='HSIL')],
        annotations=[
            # A: IoU(100..140, 105..145) = 1225 / 1975 >= 0.3
            dict(id=1, image_id=1, category_id=2, bbox=[105, 105, 40, 40]),
            # B: IoU 0.25 < 0.3 but the cell centre (520, 520) is inside
            dict(id=2, image_id=2, category_id=2, bbox=[500, 500, 40, 40]),
            # F: only a normal box on its cell, the abnormal one elsewhere
            dict(id=3, image_id=3, category_id=1, bbox=[2000, 2000, 40, 40]),
            dict(id=4, image_id=3, category_id=2, bbox=[10, 10, 40, 40]),
        ])
    gt = tmp_path / 'cells.json'
    gt.write_text(json.dumps(coco))
    return tmp_path, out, labels, gt


def test_calibrate_thresholds(hand_set):
    tmp, out, labels, _ = hand_set
    res = tmp / 'thr.json'
    proc = run_tool([sys.executable, CAL, out, '--labels', labels,
                     '--aggregator', 'max', '--out', res])
    assert 'ASC-US' in proc.stdout
    js = json.loads(res.read_text())
    t = js['thresholds']
    assert js['grades'] == ['NILM', 'ASC-US', 'LSIL', 'ASC-H', 'HSIL', 'SCC']
    assert js['num_slides'] == dict(NILM=3, **{'ASC-US': 1}, LSIL=1,
                                    **{'ASC-H': 0}, HSIL=1, SCC=0)
    # >= ASC-US: .95 .6 .8 -> 0.6; NILM below 0.6: 0, .4 (not .7) -> 2/3
    assert t['ASC-US']['threshold'] == pytest.approx(0.6)
    assert t['ASC-US']['specificity_negative'] == pytest.approx(2 / 3)
    assert t['LSIL']['threshold'] == pytest.approx(0.6)
    assert t['ASC-H']['threshold'] == pytest.approx(0.95)
    assert t['HSIL']['specificity_negative'] == pytest.approx(1.)
    assert t['SCC']['threshold'] is None
    assert call_grade(0.7, js) == 'LSIL' and call_grade(0.96, js) == 'HSIL'
    assert call_grade(0.5, js) == 'NILM'
    # refuses to overwrite, then --force-overwrite with a scores CSV
    proc = _run(CAL, [str(out), '--labels', str(labels), '--aggregator',
                      'max', '--out', str(res)])
    assert proc.returncode == 2
    assert '--force-overwrite' in proc.stderr
    csv = tmp / 'scores.csv'
    csv.write_text('slide,score\n' + ''.join(
        f'{n},{max(v[1]) if v[1] else 0.}\n' for n, v in SLIDES.items()))
    proc = _run(CAL, [str(csv), '--labels', str(labels), '--out',
                      str(res), '--grades', 'NILM,ASC-US,LSIL,HSIL',
                      '--target-sensitivity', '0.5',
                      '--force-overwrite'])
    assert proc.returncode == 0
    js = json.loads(res.read_text())
    assert js['aggregator'] == 'max'  # recorded for the inferencer
    t = js['thresholds']
    # 50 %: 2 of the 3 slides >= ASC-US (.95, .8) -> 0.8
    assert t['ASC-US']['threshold'] == pytest.approx(0.8)
    # errors: unknown grade, labelled slide without score
    (tmp / 'bad.csv').write_text('slide,label\nA,CANCER\n')
    proc = _run(CAL, [str(csv), '--labels', str(tmp / 'bad.csv'),
                      '--out', str(tmp / 'x.json')])
    assert proc.returncode == 2
    assert "['CANCER'] are not in" in proc.stderr
    (tmp / 'miss.csv').write_text('slide,label\nA,HSIL\nZ,NILM\n')
    proc = _run(CAL, [str(csv), '--labels', str(tmp / 'miss.csv'),
                      '--out', str(tmp / 'x.json')])
    assert proc.returncode == 2
    assert "['Z']" in proc.stderr
    assert not (tmp / 'x.json').exists()


def test_eval_slides_aggregator_and_hit_rate(hand_set):
    tmp, out, labels, gt = hand_set
    res = tmp / 'eval.json'
    proc = run_tool([sys.executable, EVAL, out, '--labels', labels,
                     '--aggregator', 'max', '--cell-gt', gt, '--spec',
                     '0.5', '--out', res])
    assert 'slide AUC' in proc.stdout and 'top-10 hit rate' in proc.stdout
    js = json.loads(res.read_text())
    assert js['num_slides'] == 6 and js['num_positive'] == 3
    assert js['auc'] == pytest.approx(8 / 9)
    # spec 0.9 needs t > 0.7 -> t = 0.8 -> 2 of 3 positives
    assert js['sensitivity_at_spec']['0.9'] == pytest.approx(2 / 3)
    assert js['threshold_at_spec']['0.9'] == pytest.approx(0.8)
    # spec 0.5: t = 0.6 (negatives 0, .4 below) -> all positives
    assert js['sensitivity_at_spec']['0.5'] == pytest.approx(1.)
    # lowest positive .6: D (0) and E (.4) of 6 slides below
    assert js['triage_share_at_full_sensitivity'] == pytest.approx(1 / 3)
    # A by IoU, B by centre, F misses (its box matches a NILM box only)
    assert js['top10_hit_rate'] == pytest.approx(2 / 3)
    assert js['hit_rate_slides'] == 3
    # top-1 only: B's hit is its second cell
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--aggregator',
                       'max', '--cell-gt', str(gt), '--topk', '1',
                       '--out', str(res), '--force-overwrite'])
    assert proc.returncode == 0
    assert json.loads(res.read_text())['top1_hit_rate'] == pytest.approx(
        1 / 3)
    # topk_mean is not in the reports: computed from the bags (k = 10)
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--aggregator',
                       'topk_mean', '--out', str(res),
                       '--force-overwrite'])
    assert proc.returncode == 0
    per = {r['slide']: r['score'] for r in json.loads(
        res.read_text())['per_slide']}
    assert per['A'] == pytest.approx((0.2 + 0.95 + 0.5) / 3)
    assert per['D'] == 0.
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--aggregator',
                       'attn', '--out', str(tmp / 'y.json')])
    assert proc.returncode == 2
    assert "slide_scores['attn']" in proc.stderr
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--out',
                       str(tmp / 'y.json')])
    assert proc.returncode == 2
    assert '--aggregator' in proc.stderr
    assert not (tmp / 'y.json').exists()
    # a failed slide (report with "error") is missing: error or skipped
    (out / 'E' / 'report.json').write_text(json.dumps(dict(
        slide='E', status='failed', error='OpenSlideError: corrupt')))
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--aggregator',
                       'max', '--out', str(tmp / 'y.json')])
    assert proc.returncode == 2
    assert "['E']" in proc.stderr
    proc = _run(EVAL, [str(out), '--labels', str(labels), '--aggregator',
                       'max', '--out', str(tmp / 'y.json'),
                       '--skip-missing'])
    assert proc.returncode == 0
    js = json.loads((tmp / 'y.json').read_text())
    assert js['num_slides'] == 5 and js['skipped_missing'] == ['E']
    # without E (0.4): lowest positive .6, only D (0) below -> 1 / 5
    assert js['triage_share_at_full_sensitivity'] == pytest.approx(0.2)


def make_bags(root, n_pos=20, n_neg=20, c=8, seed=0):
    """Bags where positives hold 1-3 high-score cells with a shifted
    feature; negatives (sometimes without any cell) only low scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_pos + n_neg):
        pos = i < n_pos
        k = int(rng.integers(5 if pos else 0, 40))
        scores = rng.uniform(0, 0.4, k).astype(np.float32)
        feats = rng.normal(0, 1, (k, c)).astype(np.float32)
        if pos:
            n_ab = int(rng.integers(1, 4))
            scores[:n_ab] = rng.uniform(0.7, 1.0, n_ab)
            feats[:n_ab, 0] += 3.
        perm = rng.permutation(k)
        xy = rng.uniform(0, 5000, (k, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + 40], 1)
        write_slide(root / 'bags', f'slide_{i:03d}', scores[perm],
                    boxes[perm], feats[perm])
        rows.append((f'slide_{i:03d}', 'positive' if pos else 'negative'))
    (root / 'labels').mkdir()
    for split in ('train', 'val', 'test'):
        (root / 'labels' / f'{split}.csv').write_text(
            'slide,label\n' + ''.join(f'{a},{b}\n' for a, b in rows))


def test_mil_config_builds():
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(MIL_CFG))
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.val_evaluator.type == 'SlideScreeningMetric'
    assert cfg.train_dataloader.dataset.data_root == \
        'data/cervical-slide-bags/'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'SlideMILClassifier'
    assert model.data_preprocessor.top_k == 32
    assert type(model.aggregator).__name__ == 'AttentionMILAggregator'


def _records(work):
    return [json.loads(line) for f in sorted(work.rglob('*.json'))
            if f.name != 'scalars.json' and 'vis_data' in f.parts
            for line in f.read_text().splitlines() if line.strip()]


def test_mil_train_test_eval(tmp_path):
    root = tmp_path / 'bags_set'
    make_bags(root)
    cfg = tmp_path / 'mil.py'
    cfg.write_text(f"""
_base_ = [{str(MIL_CFG)!r}]
data_root = {str(root) + '/'!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(aggregator=dict(in_channels=8))
train_cfg = dict(max_epochs=10, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=5e-3))
default_hooks = dict(logger=dict(interval=1))
""")
    work = tmp_path / 'work'
    run_tool([sys.executable, 'tools/train.py', cfg, '--work-dir', work],
             timeout=600)
    recs = _records(work)
    losses = [r['loss_slide'] for r in recs if 'loss_slide' in r]
    assert len(losses) == 50
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1
    aucs = [r['slide/auc'] for r in recs if 'slide/auc' in r]
    assert len(aucs) == 2 and aucs[-1] > 90.
    ckpt = work / 'epoch_10.pth'
    proc = run_tool([sys.executable, 'tools/test.py', cfg, ckpt,
                     '--work-dir', tmp_path / 'test'], timeout=600)
    assert 'slide/sens_at_spec90' in proc.stdout + proc.stderr
    res = tmp_path / 'eval_mil.json'
    proc = _run(EVAL, [str(root / 'bags'), '--labels',
                       str(root / 'labels' / 'test.csv'), '--mil-config',
                       str(cfg), '--mil-checkpoint', str(ckpt), '--out',
                       str(res)])
    assert proc.returncode == 0
    js = json.loads(res.read_text())
    assert js['auc'] > 0.9 and js['num_slides'] == 40
    assert js['auc'] == pytest.approx(aucs[-1] / 100, abs=1e-6)
