"""The OICR CPU config end to end: proposals for real-crop mosaics, a
2-process gloo tools/dist_train.sh run from image-level labels only (DDP,
distributed COCO + CorLoc validation), tools/test.py with COCO AP and CorLoc,
predictions in original image coordinates."""
import json
import sys

import pytest
from mmengine.fileio import load

from conftest import ROOT, free_port, run_tool

OICR_CPU = ROOT / 'configs' / 'oicr' / \
    'oicr_r18-w32_adam-24e_1xb4_cervical-mosaic-bethesda-512.py'


@pytest.fixture(scope='module')
def oicr_run(tiny_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('oicr')
    props = tmp / 'proposals'
    run_tool([sys.executable, ROOT / 'tools' / 'dataset_converters' /
              'generate_proposals.py', '--data-root', tiny_mosaic,
              '--out-dir', props, '--max-per-img', '300'])
    root = str(tiny_mosaic).rstrip('/') + '/'
    cfg = tmp / 'oicr.py'
    cfg.write_text(f"""
_base_ = [{str(OICR_CPU)!r}]
data_root = {root!r}
img_scale = (256, 256)
_loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    _loader, batch_size=2,
    dataset=dict(data_root=data_root,
                 proposal_file={str(props / 'train.pkl')!r}))
val_dataloader = dict(
    _loader, dataset=dict(data_root=data_root,
                          proposal_file={str(props / 'val.pkl')!r}))
test_dataloader = dict(
    _loader, dataset=dict(data_root=data_root,
                          proposal_file={str(props / 'test.pkl')!r}))
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json',
         metric='bbox', classwise=True),
    dict(type='CorLocMetric', iou_thr=0.5)]
test_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/test.json',
         metric='bbox', classwise=True),
    dict(type='CorLocMetric', iou_thr=0.5)]
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=3))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
""")
    work = tmp / 'work'
    proc = run_tool(['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2,
                     '--work-dir', work], env=dict(PORT=str(free_port())))
    return tmp, cfg, work, proc.stdout + proc.stderr


def test_training_logs_mil_and_refinement_losses(oicr_run):
    _, _, work, out = oicr_run
    assert 'Distributed training: True' in out
    path = next(work.glob('*/vis_data/scalars.json'))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    train = [r for r in rows if 'loss_mil' in r]
    assert len(train) == 6  # 8 images, 2 processes x batch 2, 3 epochs
    for r in train:
        assert {'loss_ref1', 'loss_ref2', 'loss_ref3'} <= set(r)
        assert all(r[k] == r[k] and r[k] < 1e4 for k in r
                   if k.startswith('loss'))  # finite
    # the validation at the end reports CorLoc and COCO AP
    val = [r for r in rows if 'corloc/mean' in r]
    assert val and 'coco/bbox_mAP_50' in val[-1]
    assert 0.0 <= val[-1]['corloc/mean'] <= 1.0


def test_test_tool_reports_corloc_and_dumps_original_scale_boxes(
        oicr_run, tiny_mosaic):
    tmp, cfg, work, _ = oicr_run
    out = tmp / 'pred.pkl'
    proc = run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg,
                     work / 'epoch_3.pth', '--work-dir', tmp / 'test',
                     '--out', out])
    text = proc.stdout + proc.stderr
    assert 'corloc/mean' in text
    assert 'bbox_mAP_50' in text
    preds = load(out)
    coco = json.loads((tiny_mosaic / 'annotations' / 'test.json').read_text())
    assert len(preds) == len(coco['images'])
    n = 0
    for p in preds:
        boxes = p['pred_instances']['bboxes']
        h, w = p['ori_shape']
        assert (boxes[:, 0::2] <= w + 1).all() and (boxes[:, 1::2] <= h + 1).all()
        assert ((p['pred_instances']['labels'] >= 0)
                & (p['pred_instances']['labels'] < 5)).all()
        n += len(boxes)
    assert n > 0
