# CPU-sized teacher of ../../ld_wsccd/ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_
# cric-cervix-384.py: RetinaNet with a full-width ResNet-18 (from scratch)
# and a 128-channel FPN and head, trained with the boxes of the real CRIC
# training fields read at 384x384, 20 epochs. Not a paper setting: it exists
# so the whole LD-WSCCD pipeline runs on a CPU in minutes.
_base_ = [
    '../../_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/cric_cervix_weak_512.py',
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/adam_20e_cosine.py'
]
img_scale = (384, 384)
model = dict(
    backbone=dict(
        depth=18,
        stem_channels=64,
        base_channels=64,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128, stacked_convs=2))
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
