# Stage 3 of Fei et al. (MICCAI 2023), the settings every PCN-RetinaNet
# config shares (paper and CPU sizes): s_c = 1 - p(normal) with normal =
# label 0 of the patch set, the PCN's local-scale feature from its stage 1,
# ranking loss (alpha 0.25, margin 0.05) and ROI-correlation consistency
# loss (beta 1.0), K = 10 boxes per image from the detached predictions of
# each step (Sec. 2.3-2.4, Table 2 row "+both"). A config adds its PCN
# (`pcn`, `pcn_checkpoint`) and the patch geometry of its patch set
# (`patch_cfg`, as build_pcn_patches.py cut it):
#     model = dict(_base_.pcn_rank_rcc, pcn=..., pcn_checkpoint=...,
#                  patch_cfg=...)
pcn_rank_rcc = dict(
    type='PCNRetinaNet',
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
        min_bbox_size=0))
