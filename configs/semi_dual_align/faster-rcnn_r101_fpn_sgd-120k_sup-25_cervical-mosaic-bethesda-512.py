# Supervised baseline of Chai et al. Table 1 (Sec. 3.2: "Faster R-CNN is
# provided with the same labeled data only"): Faster R-CNN with ImageNet
# ResNet-101 and FPN on the 25 % labeled images (annotations/semi/
# train_labeled_25.json from split_semi.py), the paper's optimiser and
# schedule (../_base_/schedules/sgd_120k_semi.py), batch 8 = 2 GPUs x 4
# labeled images (the paper's batch size, Sec. 2.3), the same flip and
# colour jitter as the semi-supervised configs.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/semi_cervical_mosaic_bethesda_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_120k_semi.py'
]
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    roi_head=dict(bbox_head=dict(num_classes=5)))
labeled_percent = 25
train_pipeline = _base_.sup_pipeline[:-1] + [dict(type='PackDetInputs')]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
train_cfg = dict(type='IterBasedTrainLoop',
                 max_iters=_base_.max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
