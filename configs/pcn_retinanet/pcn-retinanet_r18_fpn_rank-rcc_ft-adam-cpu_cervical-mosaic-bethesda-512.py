# CPU-sized stage 3: the CPU RetinaNet distilled from the CPU PCN (half-width
# ResNet-18 on 64 px patches, configs/pcn/
# pcn_resnet18-w32_gap_adam-cpu_cervical-patches-bethesda-512.py) with both
# losses. Same losses, weights, K and box selection as the paper config
# (pcn-retinanet_r50_fpn_rank-rcc_adam-12e_...); smaller networks and inputs.
_base_ = [
    './retinanet_r18_fpn_ft-adam-cpu_cervical-mosaic-bethesda-512.py',
    '../pcn/_base_/pcn_resnet18-w32.py'
]
model = dict(
    type='PCNRetinaNet',
    pcn={{_base_.pcn_model}},
    pcn_checkpoint='work_dirs/pcn_resnet18-w32_gap_adam-cpu_cervical-patches-bethesda-512/epoch_12.pth',  # noqa: E501
    pcn_score='abnormal',
    pcn_normal_index=0,
    pcn_local_stage=0,
    # roi_extractor: the default 7x7 RoIAlign over FPN strides 8-64 with the
    # head's channel count
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
