# Supervised CPU baseline of ./dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_
# ...: the same half-width ResNet-18 Faster R-CNN, 384 px, schedule and
# optimiser, trained on the 25 % labeled images only (batch 2 = the labeled
# half of the semi batch). Not a paper setting.
_base_ = [
    './faster-rcnn_r101_fpn_sgd-120k_sup-25_cervical-mosaic-bethesda-512.py',
    './_base_/faster-rcnn_r18-w32_fpn-64_sgd-300it.py'
]
img_scale = (384, 384)
model = _base_.cpu_faster_rcnn
train_cfg = dict(max_iters=_base_.cpu_max_iters, val_interval=100)
param_scheduler = _base_.cpu_param_scheduler
optim_wrapper = _base_.cpu_optim_wrapper
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
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
