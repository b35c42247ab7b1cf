# Stage 1 of Fei et al. (MICCAI 2023): RetinaNet R50-FPN at 1024x1024 (Sec. 2),
# on the cervical mosaic set (5 abnormal Bethesda classes).
# Paper settings: "L_cls is a Cross-Entropy loss ... L_reg is a Smooth-L1
# loss" (Sec. 2.4): RetinaNet's focal loss (an alpha-balanced, modulated
# cross-entropy, as RetinaNet [12] defines it) and Smooth-L1 with RetinaNet's
# beta 0.11 (mmdet's L1 default replaced); "All parameters are optimized by
# Adam with an initial learning rate of 4e-5" (Sec. 3.1): no weight decay
# (Adam's default; none is given).
# Ours (the paper gives none): 24 epochs, batch 2, warm-up and /10 at epochs
# 16 and 22, gradient clipping at norm 35, the flips of the pipeline.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/cervical_mosaic_bethesda_1024.py',
    '../_base_/schedules/adam_24e.py', '../_base_/default_runtime.py'
]
model = dict(
    bbox_head=dict(
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=0.11, loss_weight=1.0)))
optim_wrapper = dict(optimizer=dict(weight_decay=0.))
