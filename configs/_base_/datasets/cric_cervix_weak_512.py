# Real CRIC Cervix Pap-smear fields (data/cric-cervix/, the COCO files of
# tools/dataset_converters/cric_to_coco.py: annotations/{train,val,test}.json,
# images/<stem>.jpg; label set abnormal5: ASC-US, ASC-H, LSIL, HSIL, SCC,
# NILM is background) seen as LD-WSCCD sees its data (Sec. III.D): every
# training image has its (incomplete) boxes, which supervise the SSD and the
# distillation mask, and its image labels (the set of classes in the field,
# WeakCocoDataset's img_labels), which supervise the MIL detector. For
# image-label-only training images set
# train_dataloader.dataset.box_fraction < 1 (those images then train the MIL
# detector and the mask from the MIL output only). Fields resized to 512x512
# (the paper's input, Sec. III.B), flipped both ways; val/test keep the boxes
# for COCO AP and CorLoc. Departs from Sec. III.A: the paper's data set [37]
# (7086 ThinPrep images, 11 classes) is not available here; CRIC's real
# fields are the closest box-annotated (point-derived) multi-class set.
# (self-contained; the names below match ./cervical_mosaic_bethesda_1024.py)
dataset_type = 'CervicalCocoDataset'
backend_args = None

data_root = 'data/cric-cervix/'
img_scale = (512, 512)
classes = ('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC')
metainfo = dict(classes=classes)
# mmdet's PackDetInputs meta keys + the weak labels
# (cervdet.datasets.weak_coco.WEAK_META_KEYS / WEAK_TEST_META_KEYS).
weak_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                  'scale_factor', 'flip', 'flip_direction', 'img_labels',
                  'has_boxes')
weak_test_meta_keys = weak_meta_keys + ('instances', )
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackDetInputs', meta_keys=weak_meta_keys)
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=weak_test_meta_keys)
]
_dataset = dict(
    type='WeakCocoDataset',
    data_root=data_root,
    metainfo=metainfo,
    # a bethesda6 file's NILM boxes are background here
    unknown_classes='ignore',
    data_prefix=dict(img='images/'))
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        _dataset,
        ann_file='annotations/train.json',
        box_fraction=1.0,
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _dataset,
        ann_file='annotations/val.json',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _dataset,
        ann_file='annotations/test.json',
        test_mode=True,
        pipeline=test_pipeline))
_coco_items = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100']
val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/val.json',
        metric='bbox',
        classwise=True,
        metric_items=_coco_items),
    dict(type='CorLocMetric', iou_thr=0.5),
    # the point metric of every CRIC detector (docs/point_metric.md)
    dict(type='PointHitMetric', ann_file=data_root + 'annotations/val.json'),
]
test_evaluator = [
    dict(val_evaluator[0], ann_file=data_root + 'annotations/test.json'),
    dict(type='CorLocMetric', iou_thr=0.5),
    dict(type='PointHitMetric', ann_file=data_root + 'annotations/test.json'),
]
