# Table 2 "+Ranking Loss and RCC Loss" of the CPU PCN ablation on the real
# CRIC fields: the CPU RetinaNet of retinanet_r18-w32_fpn_ft-adam-cpu_
# cric-cervix-512 (same start checkpoint, data and schedule) distilled from
# the CPU PCN trained on patches of the CRIC train fields (configs/pcn/
# pcn_resnet18-w32_gap_adam-cpu_cric-patches-64.py: half-width ResNet-18,
# 64 px patches). Same losses, weights, K and box selection as the paper
# config (pcn-retinanet_r50_fpn_rank-rcc_adam-12e_...); smaller networks,
# inputs and schedule.
_base_ = [
    './retinanet_r18-w32_fpn_ft-adam-cpu_cric-cervix-512.py',
    '../pcn/_base_/pcn_resnet18-w32.py'
]
model = dict(
    type='PCNRetinaNet',
    pcn={{_base_.pcn_model}},
    pcn_checkpoint='work_dirs/pcn_resnet18-w32_gap_adam-cpu_cric-patches-64/epoch_3.pth',  # noqa: E501
    pcn_score='abnormal',
    pcn_normal_index=0,
    pcn_local_stage=0,
    loss_rank=dict(type='RankingLoss', margin=0.05, loss_weight=0.25),
    loss_rcc=dict(type='RCCLoss', loss_weight=1.0),
    distill_cfg=dict(
        topk=10,
        score_thr=0.05,
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.5),
        min_bbox_size=0),
    # must match build_pcn_patches.py --patch-size 64 (scale 1.5, square)
    patch_cfg=dict(size=64, scale=1.5, square=True, min_size=0))
