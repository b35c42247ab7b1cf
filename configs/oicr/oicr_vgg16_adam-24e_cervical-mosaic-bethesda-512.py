# OICR weakly supervised detector (image-level labels only) on the 512
# cervical mosaics: VGG16 (ImageNet) features, cell-candidate proposals,
# K = 3 refinement stages. Evaluated with COCO AP and CorLoc on the boxes of
# the val/test splits.
_base_ = [
    '../_base_/models/oicr_vgg16.py',
    '../_base_/datasets/cervical_mosaic_bethesda_512_weak.py',
    '../_base_/default_runtime.py'
]
train_dataloader = dict(batch_size=4, num_workers=2)
max_epochs = 24
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=True, milestones=[16, 22], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=5e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=2))
