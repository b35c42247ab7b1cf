# CPU-sized RetinaNet on the real CRIC Cervix fields (the main job): the
# CPU RetinaNet's network (half-width ResNet-18 "r18-w32", narrow FPN/head),
# from scratch here (see *_dino-init_* for cervdet's own DINO starting
# point), the 688x510 fields read at 512x380, 12 epochs of the 151 training
# fields, batch 4, Adam 1e-3. Not a paper setting: use the R50 1024 configs
# for paper-scale results. Data: tools/dataset_converters/cric_to_coco.py
# (configs/_base_/datasets/cric_cervix.py); results in
# configs/retinanet/README.md.
_base_ = [
    '../_base_/models/retinanet_r18-w32_fpn.py',
    '../_base_/datasets/cric_cervix.py', '../_base_/default_runtime.py',
    '../_base_/schedules/adam_20e_cosine.py'
]
img_scale = (512, 380)
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
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.05)
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=1))
log_processor = dict(window_size=10)
