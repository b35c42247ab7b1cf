# CPU-sized dual-alignment Faster R-CNN for tests and short runs: the paper
# config (own-prediction pseudo labels, three-term prototype loss, proxies at
# 2 x lr) with a half-width ResNet-18 (base 32 channels) from scratch,
# 64-channel FPN and heads, 384 px, a few hundred iterations, and the
# softmax form of the proxy loss (denominator='all', >= 0, the safer choice
# from scratch; the paper's Eq. 2 excludes the true class). Not a paper
# setting.
_base_ = [
    './dual-align_faster-rcnn_r101_fpn_sgd-120k_semi-25_cervical-mosaic-bethesda-512.py',  # noqa: E501
    './_base_/faster-rcnn_r18-w32_fpn-64_sgd-300it.py'
]
img_scale = (384, 384)
model = dict(_base_.cpu_dual_align, detector=_base_.cpu_faster_rcnn)

train_cfg = dict(max_iters=_base_.cpu_max_iters, val_interval=100)
param_scheduler = _base_.cpu_param_scheduler
optim_wrapper = _base_.cpu_optim_wrapper
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=100))
log_processor = dict(window_size=10)

# The semi pipelines with Resize to img_scale.
sup_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.sup_pipeline
]
unsup_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.unsup_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
labeled_dataset = dict(_base_.labeled_dataset, pipeline=sup_pipeline)
unlabeled_dataset = dict(_base_.unlabeled_dataset, pipeline=unsup_pipeline)
train_dataloader = dict(
    batch_size=4,
    sampler=dict(batch_size=4),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
