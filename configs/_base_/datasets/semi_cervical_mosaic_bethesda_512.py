# Semi-supervised split of the 512x512 cervical mosaic set (Chai et al.,
# ISBI 2022): a labeled fraction and the unlabeled rest of the training
# images, written by
#   python tools/dataset_converters/split_semi.py \
#       <data_root>/annotations/train.json --out-dir <data_root>/annotations/semi
# Branches and sampling follow mmdet's _base_/datasets/semi_coco_detection.py:
# MultiBranch pipelines (sup / unsup_teacher weak view / unsup_student strong
# view) and a GroupMultiSourceSampler mixing the two sources 1:1.
_base_ = './cervical_mosaic_bethesda_512.py'
dataset_type = 'CervicalCocoDataset'
data_root = 'data/cervical-mosaic-bethesda-512/'
img_scale = (512, 512)
labeled_percent = 25
backend_args = None

color_space = [
    [dict(type='ColorTransform')],
    [dict(type='AutoContrast')],
    [dict(type='Equalize')],
    [dict(type='Sharpness')],
    [dict(type='Posterize')],
    [dict(type='Solarize')],
    [dict(type='Color')],
    [dict(type='Contrast')],
    [dict(type='Brightness')],
]
geometric = [
    [dict(type='Rotate')],
    [dict(type='ShearX')],
    [dict(type='ShearY')],
    [dict(type='TranslateX')],
    [dict(type='TranslateY')],
]
# Cells have no orientation on a slide: flip both ways.
flip = dict(
    type='RandomFlip',
    prob=[0.25, 0.25, 0.25],
    direction=['horizontal', 'vertical', 'diagonal'])
branch_field = ['sup', 'unsup_teacher', 'unsup_student']
unsup_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction',
                   'homography_matrix')

# labeled images -> student, supervised losses and labeled embeddings
sup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    dict(type='RandAugment', aug_space=color_space, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        sup=dict(type='PackDetInputs'))
]
# weak view -> teacher (pseudo labels)
weak_pipeline = [
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    dict(type='PackDetInputs', meta_keys=unsup_meta_keys),
]
# strong view -> student (unlabeled embeddings)
strong_pipeline = [
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    dict(
        type='RandomOrder',
        transforms=[
            dict(type='RandAugment', aug_space=color_space, aug_num=1),
            dict(type='RandAugment', aug_space=geometric, aug_num=1),
        ]),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs', meta_keys=unsup_meta_keys),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        unsup_teacher=weak_pipeline,
        unsup_student=strong_pipeline,
    )
]

labeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json',
    data_prefix=dict(img='images/train/'),
    # keep labeled negatives: they train the background
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=sup_pipeline,
    backend_args=backend_args)
unlabeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file=f'annotations/semi/train_unlabeled_{labeled_percent}.json',
    data_prefix=dict(img='images/train/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=unsup_pipeline,
    backend_args=backend_args)

batch_size = 4
train_dataloader = dict(
    _delete_=True,
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(
        type='GroupMultiSourceSampler',
        batch_size=batch_size,
        source_ratio=[1, 1]),
    dataset=dict(
        type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]))

# CocoMetric plus the IoU-range AP of the cervical papers
_coco_items = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100']
val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/val.json',
        metric='bbox',
        classwise=True,
        metric_items=_coco_items,
        backend_args=backend_args),
    dict(
        type='IoURangeCocoMetric',
        ann_file=data_root + 'annotations/val.json',
        metric='bbox',
        prefix='iou_range',
        backend_args=backend_args),
]
test_evaluator = [
    dict(e, ann_file=data_root + 'annotations/test.json')
    for e in val_evaluator
]
