# Everything but the model of the CPU semi-supervised comparison on the real
# CRIC fields (issue 19): the semi data base's pipelines at the CRIC scale,
# the labeled / unlabeled datasets, the CRIC budget (schedule, checkpoints,
# logs) and the evaluators. The configs of the comparison add a model base
# (./faster-rcnn_r18-w32_fpn-64.py) and the method. Data:
#   python tools/dataset_converters/cric_to_coco.py ... \
#       --out-dir data/cric-cervix
#   python tools/dataset_converters/split_semi.py \
#       data/cric-cervix/annotations/train.json \
#       --out-dir data/cric-cervix/annotations/semi --seed 0
# (the paper's pool protocol, Sec. 3.2: one unlabeled set of 76 of the 151
# training fields for every row; 19 / 38 labeled fields for 25 / 50 %).
# Fields read at 512x380 as the CPU RetinaNet on CRIC
# (configs/retinanet/retinanet_r18-w32_fpn_adam-12e_1xb4_cric-cervix-512.py),
# evaluated on the held-out test fields with COCO AP, the paper's mAP over
# IoU 0.10:0.70 (Sec. 3.1) and the point metric (docs/point_metric.md).
# The schedule is the CPU budget of the comparison, the same for every row:
# cric_max_iters iterations (see README.md, "CRIC fields: the comparison");
# the paper's optimiser (../../_base_/schedules/sgd_120k_semi.py) with
# gradient clipping from scratch. Not a paper setting: a CPU size.
_base_ = [
    '../../_base_/datasets/semi_cervical_mosaic_bethesda_512.py',
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/sgd_120k_semi.py'
]
cric_data_root = 'data/cric-cervix/'
cric_img_prefix = dict(img='images/')
cric_img_scale = (512, 380)
img_scale = cric_img_scale
cric_max_iters = 600


def _at_cric_scale(pipeline):
    """The pipeline with every Resize at the CRIC scale."""
    return [
        dict(t, scale=cric_img_scale) if t['type'] == 'Resize' else t
        for t in pipeline
    ]


sup_pipeline = _at_cric_scale(_base_.sup_pipeline)
unsup_pipeline = _at_cric_scale(_base_.unsup_pipeline)
test_pipeline = _at_cric_scale(_base_.test_pipeline)
# the supervised rows: the labeled half of the semi pipeline alone
train_pipeline = sup_pipeline[:-1] + [dict(type='PackDetInputs')]
# the teacher / student pipelines (Mean Teacher): weak and strong views
weak_pipeline = _at_cric_scale(_base_.weak_pipeline)
strong_pipeline = _at_cric_scale(_base_.strong_pipeline)
teacher_sup_pipeline = _at_cric_scale(_base_.teacher_sup_pipeline)
teacher_unsup_pipeline = _base_.teacher_unsup_pipeline[:-1] + [
    dict(_base_.teacher_unsup_pipeline[-1], unsup_teacher=weak_pipeline,
         unsup_student=strong_pipeline)
]

labeled_percent = 25
labeled_dataset = dict(
    _base_.labeled_dataset,
    data_root=cric_data_root,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json',
    data_prefix=cric_img_prefix,
    pipeline=sup_pipeline)
unlabeled_dataset = dict(
    _base_.unlabeled_dataset,
    data_root=cric_data_root,
    ann_file='annotations/semi/train_unlabeled.json',
    data_prefix=cric_img_prefix,
    pipeline=unsup_pipeline)
# batch 2 labeled + 2 unlabeled (Sec. 2.3 "equally sampled")
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    sampler=dict(batch_size=4),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
# the supervised rows: the labeled fields alone, batch 2 (the labeled half
# of the semi batch), set with
#   train_dataloader = dict(_base_.sup_train_dataloader, _delete_=True)
sup_train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=cric_data_root,
        ann_file=labeled_dataset['ann_file'],
        data_prefix=cric_img_prefix,
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=cric_data_root,
        ann_file='annotations/val.json',
        data_prefix=cric_img_prefix,
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        data_root=cric_data_root,
        ann_file='annotations/test.json',
        data_prefix=cric_img_prefix,
        pipeline=test_pipeline))
cric_coco_items = [
    'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100'
]
val_evaluator = [
    dict(type='CocoMetric', ann_file=cric_data_root + 'annotations/val.json',
         metric='bbox', classwise=True, metric_items=cric_coco_items),
    dict(type='IoURangeCocoMetric', metric='bbox', prefix='iou_range',
         ann_file=cric_data_root + 'annotations/val.json'),
    dict(type='PointHitMetric',
         ann_file=cric_data_root + 'annotations/val.json')
]
test_evaluator = [
    dict(e, ann_file=cric_data_root + 'annotations/test.json')
    for e in val_evaluator
]

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=cric_max_iters, by_epoch=False,
         milestones=[400, 540], gamma=0.1)
]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
# validate once, at the end (nothing is selected on the val fields)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=cric_max_iters,
                 val_interval=cric_max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        by_epoch=False, interval=100, max_keep_ckpts=1, save_last=True))
log_processor = dict(by_epoch=False, window_size=10)
