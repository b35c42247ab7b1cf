# Table 2 "+Ranking Loss and RCC Loss" of the CPU PCN ablation on the real
# CRIC fields: the CPU RetinaNet of retinanet_r18-w32_fpn_ft-adam-2e_1xb4_
# cric-cervix-512 (same start checkpoint, data and schedule) distilled from
# the CPU PCN trained on patches of the CRIC train fields (configs/pcn_retinanet/
# pcn_resnet18-w32_gap_adam-3e_1xb32_cric-patches-64.py: half-width ResNet-18,
# 64 px patches). Same losses, weights, K and box selection as the paper
# config (pcn-retinanet_r50_fpn_rank-rcc_adam-12e_...); smaller networks,
# inputs and schedule.
_base_ = [
    './retinanet_r18-w32_fpn_ft-adam-2e_1xb4_cric-cervix-512.py',
    './_base_/pcn_resnet18-w32.py', './_base_/pcn_rank-rcc.py'
]
model = dict(
    _base_.pcn_rank_rcc,
    pcn=_base_.pcn_model,
    pcn_checkpoint='work_dirs/pcn_resnet18-w32_gap_adam-3e_1xb32_cric-patches-64/epoch_3.pth',  # noqa: E501
    # must match build_pcn_patches.py --patch-size 64 (scale 1.5, square)
    patch_cfg=dict(size=64, scale=1.5, square=True, min_size=0))
