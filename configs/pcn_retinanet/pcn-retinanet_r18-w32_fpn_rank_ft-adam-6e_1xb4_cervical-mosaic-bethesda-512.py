# CPU ablation: stage 3 with the ranking loss only.
# The rank-rcc config of the same size, written out with loss_rcc=None.
_base_ = [
    './retinanet_r18-w32_fpn_ft-adam-6e_1xb4_cervical-mosaic-bethesda-512.py',
    './_base_/pcn_resnet18-w32.py', './_base_/pcn_rank-rcc.py'
]
# roi_extractor: the default 7x7 RoIAlign over FPN strides 8-64 with the
# head's channel count
model = dict(
    _base_.pcn_rank_rcc,
    pcn=_base_.pcn_model,
    pcn_checkpoint='work_dirs/pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512/epoch_12.pth',  # noqa: E501
    # must match build_pcn_patches.py --patch-size 64 (scale 1.5, square)
    patch_cfg=dict(size=64, scale=1.5, square=True, min_size=0),
    # this ablation row
    loss_rcc=None)
