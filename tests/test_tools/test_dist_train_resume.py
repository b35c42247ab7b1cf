"""2-process gloo training with tools/dist_train.sh, then --resume, then
tools/dist_test.sh: the same scripts users run on GPUs with nccl."""
import re
import sys

import pytest
import torch

from conftest import ROOT, free_port, run_tool, write_config


@pytest.fixture(scope='module')
def dist_run(tiny_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dist')
    cfg = write_config(
        tmp / 'cfg.py', tiny_mosaic,
        extra='train_cfg = dict(max_epochs=1, val_interval=100)\n'
        'default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=5))')
    work = tmp / 'work'
    proc = run_tool(
        ['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work],
        env=dict(PORT=str(free_port())))
    return cfg, work, proc


def test_two_process_gloo_training_saves_checkpoint(dist_run):
    cfg, work, proc = dist_run
    out = proc.stdout + proc.stderr
    assert 'Distributed training: True' in out
    assert re.search(r'GPU number: 2|world_size: 2', out) or \
        'Distributed launcher: pytorch' in out
    ckpt = torch.load(work / 'epoch_1.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 1
    # 8 train images, batch 2 per process, 2 processes -> 2 iterations
    assert ckpt['meta']['iter'] == 2


def test_resume_continues_from_checkpoint(dist_run):
    cfg, work, _ = dist_run
    proc = run_tool([
        'bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work,
        '--resume', '--cfg-options', 'train_cfg.max_epochs=2'
    ], env=dict(PORT=str(free_port())))
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 2' in out
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=True)
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (2, 4)
    first = torch.load(work / 'epoch_1.pth', weights_only=True)
    # the optimizer state was restored and stepped further
    assert 'optimizer' in ckpt and 'param_schedulers' in ckpt
    w1 = first['state_dict']['bbox_head.retina_cls.weight']
    w2 = ckpt['state_dict']['bbox_head.retina_cls.weight']
    assert not torch.equal(w1, w2)


def test_existing_checkpoints_are_not_overwritten(dist_run):
    cfg, work, _ = dist_run
    before = (work / 'epoch_1.pth').stat().st_mtime_ns
    proc = run_tool(
        [sys.executable, ROOT / 'tools' / 'train.py', cfg, '--work-dir', work],
        check=False)
    assert proc.returncode != 0
    assert 'already holds checkpoints' in proc.stderr
    assert '--resume' in proc.stderr
    assert (work / 'epoch_1.pth').stat().st_mtime_ns == before


def test_two_process_dist_test(dist_run, tmp_path):
    cfg, work, _ = dist_run
    proc = run_tool([
        'bash', ROOT / 'tools' / 'dist_test.sh', cfg, work / 'epoch_1.pth', 2,
        '--work-dir', tmp_path,
        # a 2-iteration model scores below the default 0.05 threshold
        '--cfg-options', 'model.test_cfg.score_thr=0.0'
    ], env=dict(PORT=str(free_port())))
    out = proc.stdout + proc.stderr
    assert 'bbox_mAP_50' in out
    assert 'AR@100' in out
