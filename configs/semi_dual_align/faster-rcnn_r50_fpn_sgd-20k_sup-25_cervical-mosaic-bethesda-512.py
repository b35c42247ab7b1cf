# Supervised baseline of the semi-supervised table: Faster R-CNN R50-FPN
# trained on the 25 % labeled images only (annotations/semi/
# train_labeled_25.json from split_semi.py), the dual-alignment config's
# optimiser and iteration schedule (batch 2 labeled images, as the labeled
# half of the semi batch).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/cervical_mosaic_bethesda_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_20k_semi.py'
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
labeled_percent = 25
train_dataloader = dict(
    batch_size=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json'))
train_cfg = dict(type='IterBasedTrainLoop',
                 max_iters=_base_.max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# param_scheduler, optim_wrapper: ../_base_/schedules/sgd_20k_semi.py
auto_scale_lr = dict(enable=False, base_batch_size=2)
_coco_items = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100']
val_evaluator = [
    dict(type='CocoMetric',
         ann_file=_base_.data_root + 'annotations/val.json', metric='bbox',
         classwise=True, metric_items=_coco_items),
    dict(type='IoURangeCocoMetric',
         ann_file=_base_.data_root + 'annotations/val.json', metric='bbox',
         prefix='iou_range'),
]
test_evaluator = [
    dict(e, ann_file=_base_.data_root + 'annotations/test.json')
    for e in val_evaluator
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
