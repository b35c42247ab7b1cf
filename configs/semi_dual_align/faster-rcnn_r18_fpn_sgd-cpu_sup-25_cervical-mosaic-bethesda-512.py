# Supervised CPU baseline of ./dual-align_faster-rcnn_r18_fpn_sgd-cpu_semi-25_
# ...: the same half-width ResNet-18 Faster R-CNN, 384 px, schedule and
# optimiser, trained on the 25 % labeled images only (batch 2 = the labeled
# half of the semi batch). Not a paper setting.
_base_ = ['./faster-rcnn_r50_fpn_sgd-20k_sup-25_cervical-mosaic-bethesda-512.py']
img_scale = (384, 384)
model = dict(
    backbone=dict(
        depth=18,
        stem_channels=32,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=100)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[200, 270], gamma=0.1)
]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=100))
log_processor = dict(window_size=10)
train_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
