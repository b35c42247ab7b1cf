# Table 2 "+RCC Loss" of the CPU PCN ablation on the CRIC fields.
# The rank-rcc config of the same size, written out with loss_rank=None.
_base_ = [
    './retinanet_r18-w32_fpn_ft-adam-2e_1xb4_cric-cervix-512.py',
    './_base_/pcn_resnet18-w32.py', './_base_/pcn_rank-rcc.py'
]
model = dict(
    _base_.pcn_rank_rcc,
    pcn=_base_.pcn_model,
    pcn_checkpoint='work_dirs/pcn_resnet18-w32_gap_adam-3e_1xb32_cric-patches-64/epoch_3.pth',  # noqa: E501
    # must match build_pcn_patches.py --patch-size 64 (scale 1.5, square)
    patch_cfg=dict(size=64, scale=1.5, square=True, min_size=0),
    # this ablation row
    loss_rank=None)
