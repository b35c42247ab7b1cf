"""A short CPU training on real-crop mosaics learns (its loss falls and it
detects the cells of its training images far better than the untrained
model); tools/test.py's metrics are those of pycocotools on the same
predictions."""
import glob
import json
import sys

import numpy as np
import pytest
import torch
from mmengine.fileio import load
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from conftest import ROOT, run_tool, write_config

# Evaluate on the training split: the question is whether the model learns
# what it is shown, in a CI-sized budget (held-out AP after a real budget is
# reported in configs/retinanet/README.md).
LEARN_EXTRA = """
train_cfg = dict(max_epochs={epochs}, val_interval=100)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end={epochs},
         eta_min_ratio=0.05)
]
# (Reassigning default_hooks replaces write_config's dict: keep its logger.)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=100, max_keep_ckpts=1,
                                     save_last=True))
"""
EPOCHS = 40


@pytest.fixture(scope='module')
def learn_mosaic(tmp_path_factory, shared_data):
    from cervdet.datasets.synthesis import build_mosaic_dataset
    out = tmp_path_factory.mktemp('learn') / 'mosaic'
    build_mosaic_dataset(
        out, data_root=shared_data, source='bethesda', preset='512',
        progress=False, img_size=384, num_train=16, num_val=2, num_test=2,
        negative_fraction=0.125, seed=1)
    return out


@pytest.fixture(scope='module')
def trained(learn_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('learn_run')
    cfg = write_config(tmp / 'cfg.py', learn_mosaic,
                       extra=LEARN_EXTRA.format(epochs=EPOCHS),
                       batch_size=4, test_split='train')
    work = tmp / 'work'
    run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
              '--work-dir', work], env=dict(OMP_NUM_THREADS='1'), timeout=1800)
    return cfg, work


def _test(cfg, ckpt, work, out, *options):
    proc = run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg, ckpt,
                     '--work-dir', work, '--out', out, *options],
                    env=dict(OMP_NUM_THREADS='1'))
    print(proc.stdout[-2000:])
    logs = [p for p in glob.glob(str(work / '*' / '*.json'))]
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return json.loads(f.readline())


def _untrained_checkpoint(cfg, path):
    from mmdet.registry import MODELS

    from cervdet.utils.launch import load_config
    c = load_config(str(cfg))
    torch.manual_seed(0)
    model = MODELS.build(c.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


def test_loss_falls_and_ap50_beats_untrained(trained, tmp_path):
    cfg, work = trained
    scalars = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))[0]
    with open(scalars) as f:
        losses = [json.loads(line)['loss'] for line in f
                  if '"loss"' in line]
    assert len(losses) >= 50
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.6 * first, (first, last)

    ckpt = (work / 'last_checkpoint').read_text().strip()
    # Every score counts: an untrained RetinaNet scores all boxes near its
    # prior (0.01), below the default score_thr, and would give no AP at all.
    thr0 = ('--cfg-options', 'model.test_cfg.score_thr=0.0')
    trained_m = _test(cfg, ckpt, tmp_path / 'trained', tmp_path / 't.pkl',
                      *thr0)
    _untrained_checkpoint(cfg, tmp_path / 'untrained.pth')
    untrained_m = _test(cfg, tmp_path / 'untrained.pth',
                        tmp_path / 'untrained', tmp_path / 'u.pkl', *thr0)
    ap50_t = trained_m['coco/bbox_mAP_50']
    ap50_u = untrained_m['coco/bbox_mAP_50']
    print(f'AP50 trained {ap50_t:.3f} vs untrained {ap50_u:.3f}')
    assert ap50_t > ap50_u + 0.2

    # At the default threshold the untrained model keeps nothing: test.py
    # says so and how to score anyway, instead of an empty table.
    proc = run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg,
                     tmp_path / 'untrained.pth', '--work-dir',
                     tmp_path / 'untrained_thr'])
    assert 'No COCO metrics' in proc.stdout
    assert 'model.test_cfg.score_thr=0.0' in proc.stdout


def test_metrics_equal_pycocotools_on_dumped_predictions(
        trained, learn_mosaic, tmp_path):
    cfg, work = trained
    ckpt = (work / 'last_checkpoint').read_text().strip()
    metrics = _test(cfg, ckpt, tmp_path / 'test', tmp_path / 'preds.pkl')

    gt = COCO(str(learn_mosaic / 'annotations' / 'train.json'))
    preds = load(tmp_path / 'preds.pkl')
    assert len(preds) == len(gt.getImgIds())
    name_to_cat = {c['name']: c['id'] for c in gt.loadCats(gt.getCatIds())}
    from cervdet.datasets import BETHESDA_CLASSES
    label_to_cat = [name_to_cat[n] for n in BETHESDA_CLASSES]
    dets = []
    for p in preds:
        inst = p['pred_instances']
        for box, score, label in zip(inst['bboxes'].tolist(),
                                     inst['scores'].tolist(),
                                     inst['labels'].tolist()):
            x1, y1, x2, y2 = box
            dets.append(dict(image_id=p['img_id'],
                             category_id=label_to_cat[label],
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
    assert dets, 'the trained model predicts nothing'
    ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
    ev.params.maxDets = [100, 300, 1000]  # as mmdet's CocoMetric
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    expected = dict(mAP=ev.stats[0], mAP_50=ev.stats[1], mAP_75=ev.stats[2],
                    mAP_s=ev.stats[3], mAP_m=ev.stats[4], mAP_l=ev.stats[5])
    expected['AR@100'] = ev.stats[6]
    for key, value in expected.items():
        assert metrics[f'coco/bbox_{key}'] == pytest.approx(value, abs=6e-4), \
            key
    # and AP@100 with pycocotools' default maxDets is the same number
    ev2 = COCOeval(gt, gt.loadRes(dets), 'bbox')
    ev2.evaluate()
    ev2.accumulate()
    ev2.summarize()
    assert metrics['coco/bbox_mAP'] == pytest.approx(ev2.stats[0], abs=6e-4)
