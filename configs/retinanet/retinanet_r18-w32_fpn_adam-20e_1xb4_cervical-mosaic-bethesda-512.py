# CPU-sized RetinaNet for the main job and tests: a half-width ResNet-18
# (base 32 channels) trained from scratch (no download), narrow FPN/head, the
# 512x512 mosaics read at 384x384. It learns visibly in minutes on 2 CPU
# cores; see configs/retinanet/README.md for what it reaches. Not a paper
# setting: use the R50 1024 config for results.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/cervical_mosaic_bethesda_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_20e_cosine.py'
]
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
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=2))
# The 512 set's pipelines, with Resize to img_scale.
train_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]

train_dataloader = dict(
    batch_size=4, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=2))
log_processor = dict(window_size=10)
