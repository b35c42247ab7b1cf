# Semi-supervised protocol of Chai et al. (ISBI 2022) on the 512x512 cervical
# mosaic set. Sec. 3.2: "We vary the number of labeled data ... while keeping
# the unlabeled data as the same amount": ONE unlabeled set of constant size
# for the 25/50/75/100 % rows (the 100 % row is still semi-supervised), and
# nested labeled fractions of the other training images, written by
#   python tools/dataset_converters/split_semi.py \
#       <data_root>/annotations/train.json --out-dir <data_root>/annotations/semi
# (-> semi/train_unlabeled.json + semi/train_labeled_{25,50,75,100}.json).
# The paper's unlabeled set comes from other patients' slides (Sec. 3.1);
# split_semi.py holds out a fixed pool of the training images (--unlabeled-
# percent, 50 by default) or takes a separate file (--unlabeled-ann).
#
# Augmentation (Sec. 2.3): "Random flip and color jittering", for labeled
# and unlabeled images alike; one view of each unlabeled image (branch
# 'unsup'), labeled by the network's own prediction (Eq. 3). Magnitudes are
# ours (the paper gives none). The two-view pipelines of an EMA teacher
# (mmdet's semi_coco_detection.py: weak view 'unsup_teacher', strong view
# 'unsup_student') are below as teacher_* for the options that need them.
# Labeled and unlabeled images are "equally sampled" (Sec. 2.3):
# GroupMultiSourceSampler with source_ratio [1, 1].
dataset_type = 'CervicalCocoDataset'
data_root = 'data/cervical-mosaic-bethesda-512/'
img_scale = (512, 512)
labeled_percent = 25
backend_args = None

# Cells have no orientation on a slide: flip both ways.
flip = dict(
    type='RandomFlip',
    prob=[0.25, 0.25, 0.25],
    direction=['horizontal', 'vertical', 'diagonal'])
# colour jitter: brightness, contrast, saturation, each with p = 0.5, factor
# in [0.75, 1.25] (PIL ImageEnhance through mmdet's colour transforms)
color_jitter = [
    dict(type='Brightness', prob=0.5, min_mag=0.75, max_mag=1.25),
    dict(type='Contrast', prob=0.5, min_mag=0.75, max_mag=1.25),
    dict(type='Color', prob=0.5, min_mag=0.75, max_mag=1.25),
]
branch_field = ['sup', 'unsup']
unsup_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction',
                   'homography_matrix')

# labeled images -> supervised losses and labeled embeddings
sup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    *color_jitter,
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        sup=dict(type='PackDetInputs'))
]
# unlabeled images -> one view, the network's own pseudo labels
unsup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadEmptyAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    *color_jitter,
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        unsup=dict(type='PackDetInputs', meta_keys=unsup_meta_keys))
]

# --- two views for an EMA teacher (pseudo_labeler='ema_teacher', Mean
# Teacher baseline); not the paper's dual-alignment pipeline ---
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
teacher_branch_field = ['sup', 'unsup_teacher', 'unsup_student']
teacher_sup_pipeline = sup_pipeline[:-1] + [
    dict(
        type='MultiBranch',
        branch_field=teacher_branch_field,
        sup=dict(type='PackDetInputs'))
]
weak_pipeline = [
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    flip,
    dict(type='PackDetInputs', meta_keys=unsup_meta_keys),
]
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
teacher_unsup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=teacher_branch_field,
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
# the same unlabeled set for every labeled_percent (Sec. 3.2)
unlabeled_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='annotations/semi/train_unlabeled.json',
    data_prefix=dict(img='images/train/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=unsup_pipeline,
    backend_args=backend_args)

# the supervised pipelines and val/test loaders of the 512 mosaic set
# (./cervical_mosaic_bethesda_512.py)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # Cells have no orientation on a slide: flip both ways.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file='annotations/test.json',
        data_prefix=dict(img='images/test/')))

# Sec. 2.3: 2 GPUs, batch 8 -> 4 images per GPU, 2 labeled + 2 unlabeled
batch_size = 4
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(
        type='GroupMultiSourceSampler',
        batch_size=batch_size,
        source_ratio=[1, 1]),
    dataset=dict(
        type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]))

# CocoMetric plus the paper's mAP over IoU 0.10:0.70 (Sec. 3.1)
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
