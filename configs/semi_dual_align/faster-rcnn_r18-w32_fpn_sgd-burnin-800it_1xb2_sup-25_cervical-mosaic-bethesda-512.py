# Stage 1 of the warm-started CPU comparison: a supervised burn-in of the
# CPU Faster R-CNN on the 25 % labeled images, long and fast enough (800
# iterations, lr 0.02) that its own predictions pass the 0.5 pseudo-label
# threshold. Its last checkpoint initialises the network of
# ./dual-align_faster-rcnn_r18-w32_fpn_sgd-warm-300it_1xb4_semi-25_... and the
# supervised continuation ./faster-rcnn_r18-w32_fpn_sgd-warm-500it_1xb2_sup-25_...
# (mmdet's Soft Teacher recipes reach the same point with a burn-in of their
# own). Not a paper setting.
_base_ = ['./faster-rcnn_r18-w32_fpn_sgd-300it_1xb2_sup-25_cervical-mosaic-bethesda-512.py']
burnin_iters = 800
train_cfg = dict(max_iters=burnin_iters, val_interval=200)
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=burnin_iters, by_epoch=False,
         milestones=[650], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=200, max_keep_ckpts=2))
