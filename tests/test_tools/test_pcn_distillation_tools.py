"""The three-stage PCN distillation with the shipped CPU configs and tools.

Stage 2 (tools/train.py, an mmpretrain config) trains a PCN on patches built
from a tiny mosaic set; stage 3 (tools/dist_train.sh, 2 gloo processes)
distils it into RetinaNet for a few iterations; tools/test.py then gives the
same predictions for the stage-3 checkpoint with the PCN config and with the
plain RetinaNet config.
"""
import glob
import json
import math
import pickle
import sys

import pytest
import torch

from conftest import CPU_CONFIG, ROOT, free_port, run_tool, write_config

PCN_CPU = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512.py'
STAGE3_CPU = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn-retinanet_r18-w32_fpn_rank-rcc_ft-adam-6e_1xb4_cervical-mosaic-bethesda-512.py'


def _scalars(work):
    path = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    assert len(path) == 1, path
    with open(path[0]) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def stage2(tiny_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pcn_stage2')
    patches = tmp / 'patches'
    run_tool([sys.executable, ROOT / 'tools' / 'dataset_converters' /
              'build_pcn_patches.py', '--coco-root', tiny_mosaic,
              '--out-dir', patches, '--patch-size', 64, '--pos-per-box', 2])
    cfg = tmp / 'pcn_cfg.py'
    cfg.write_text(f"""
_base_ = [{str(PCN_CPU)!r}]
data_root = {str(patches) + '/'!r}
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
""")
    work = tmp / 'work'
    proc = run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
                     '--work-dir', work])
    return work, proc


def test_stage2_trains_pcn_with_accuracy_and_roc_auc(stage2):
    work, proc = stage2
    assert (work / 'epoch_2.pth').is_file()
    vals = [r for r in _scalars(work) if 'pcn/roc_auc' in r]
    assert len(vals) == 2
    for r in vals:
        assert 0 <= r['accuracy/top1'] <= 100
        assert 0 <= r['pcn/roc_auc'] <= 100
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=True)
    assert any(k.startswith('backbone.layer1') for k in ckpt['state_dict'])


@pytest.fixture(scope='module')
def stage3(stage2, tiny_mosaic, tmp_path_factory):
    pcn_ckpt = stage2[0] / 'epoch_2.pth'
    tmp = tmp_path_factory.mktemp('pcn_stage3')
    # score_thr 0: an untrained detector already yields K boxes per image
    cfg = write_config(tmp / 'stage3.py', tiny_mosaic, base=STAGE3_CPU, extra=f"""
model = dict(pcn_checkpoint={str(pcn_ckpt)!r},
             distill_cfg=dict(score_thr=0.0),
             test_cfg=dict(score_thr=0.0))
load_from = None
train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
""")
    work = tmp / 'work'
    proc = run_tool(
        ['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work],
        env=dict(PORT=str(free_port())))
    return cfg, work, proc


def test_stage3_two_process_run_has_four_finite_losses(stage3):
    cfg, work, proc = stage3
    rows = [r for r in _scalars(work) if 'loss_rank' in r]
    # 8 images, batch 2 per process, 2 processes -> 2 iterations
    assert len(rows) == 2
    for r in rows:
        for key in ('loss_cls', 'loss_bbox', 'loss_rank', 'loss_rcc', 'loss'):
            assert math.isfinite(r[key]), (key, r)
        assert r['pcn_boxes'] == 10  # K per image
        assert r['loss_rcc'] > 0
    assert (work / 'epoch_1.pth').is_file()
    ckpt = torch.load(work / 'epoch_1.pth', weights_only=True)
    assert not any(k.startswith('pcn.') for k in ckpt['state_dict'])


def _preds(cfg, ckpt, work, out):
    proc = run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg, ckpt,
                     '--work-dir', work, '--out', out])
    with open(out, 'rb') as f:
        return pickle.load(f), proc.stdout + proc.stderr


def test_checkpoint_gives_identical_outputs_with_plain_retinanet(
        stage3, tiny_mosaic, tmp_path):
    cfg, work, _ = stage3
    ckpt = work / 'epoch_1.pth'
    # score_thr 0: the briefly trained detector's boxes all count
    plain = write_config(tmp_path / 'plain.py', tiny_mosaic, base=CPU_CONFIG,
                         extra='model = dict(test_cfg=dict(score_thr=0.0))')
    a, _ = _preds(cfg, ckpt, tmp_path / 'a', tmp_path / 'a.pkl')
    b, log = _preds(plain, ckpt, tmp_path / 'b', tmp_path / 'b.pkl')
    assert 'missing keys' not in log and 'unexpected key' not in log
    assert len(a) == len(b) == 4
    assert all(len(p['pred_instances']['bboxes']) > 10 for p in a)
    for pa, pb in zip(a, b):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(pa['pred_instances'][key],
                               pb['pred_instances'][key]), key
