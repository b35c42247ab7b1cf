"""DualAlignFasterRCNN on 2 gloo processes with tools/dist_train.sh (the
script users run on GPUs with nccl): training finishes, and after it every
rank holds the same prototype memory bank, proxies and student weights (the
bank is filled from all ranks' prototypes at every step; DDP syncs the rest).
"""

import torch

from conftest import ROOT, free_port, run_tool

CPU_CFG = ROOT / 'configs' / 'semi_dual_align' / \
    'dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_' \
    'cervical-mosaic-bethesda-512.py'

DUMP_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS


@HOOKS.register_module()
class DumpBankHook(Hook):
    """Saves this rank's bank, proxies and a student weight after training."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        torch.save(dict(
            protos=model.bank.protos.clone(), labels=model.bank.labels.clone(),
            fill=model.bank.fill.clone(), ptr=model.bank.ptr.clone(),
            proxies=model.proxy_loss.proxies.detach().clone(),
            conv1=model.student.backbone.conv1.weight.detach().clone()),
            f'{self.out_dir}/bank_rank{get_rank()}.pt')
'''


def test_two_rank_semi_training_keeps_bank_in_sync(tiny_mosaic, tmp_path):
    from cervdet.datasets.semi_split import write_semi_split
    semi_dir = tiny_mosaic / 'annotations' / 'semi'
    if not (semi_dir / 'train_unlabeled.json').is_file():
        write_semi_split(tiny_mosaic / 'annotations' / 'train.json', semi_dir,
                         percents=[25], seed=0, force_overwrite=True)
    (tmp_path / 'dump_bank_hook.py').write_text(DUMP_HOOK)
    root = str(tiny_mosaic) + '/'
    cfg = tmp_path / 'dual_align_dist.py'
    cfg.write_text(f"""
_base_ = [{str(CPU_CFG)!r}]
custom_imports = dict(imports=['cervdet', 'dump_bank_hook'],
                      allow_failed_imports=False)
data_root = {root!r}
labeled_dataset = dict(_base_.labeled_dataset, data_root=data_root)
unlabeled_dataset = dict(_base_.unlabeled_dataset, data_root=data_root)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(batch_size=2),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
model = dict(semi_train_cfg=dict(score_thr=0.1, rampup_iters=3))
train_cfg = dict(max_iters=3, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
custom_hooks = [dict(type='DumpBankHook', out_dir={str(tmp_path)!r})]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
""")
    work = tmp_path / 'work'
    proc = run_tool(
        ['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work],
        env=dict(PORT=str(free_port()),
                 PYTHONPATH=f'{ROOT}:{tmp_path}'), timeout=900)
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    assert (work / 'iter_3.pth').is_file()
    rank0 = torch.load(tmp_path / 'bank_rank0.pt', weights_only=True)
    rank1 = torch.load(tmp_path / 'bank_rank1.pt', weights_only=True)
    assert int(rank0['fill']) > 0
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # each rank pushed its own batch's prototypes: 3 steps x 2 ranks x at
    # least one class with a labeled box per step
    assert int(rank0['fill']) >= 3 * 2
