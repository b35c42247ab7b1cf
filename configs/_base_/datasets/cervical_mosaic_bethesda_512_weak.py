# Weak (image-level) labels on the 512 cervical mosaics, with cell-candidate
# proposals (tools/dataset_converters/generate_proposals.py --data-root
# data/cervical-mosaic-bethesda-512 -> <data_root>/proposals/<split>.pkl).
# Training sees only which classes occur in each image (WeakCocoDataset,
# box_fraction=0); val/test keep the boxes for COCO AP and CorLoc.
_base_ = './cervical_mosaic_bethesda_1024.py'

data_root = 'data/cervical-mosaic-bethesda-512/'
img_scale = (512, 512)
num_max_proposals = 2000
# mmdet's PackDetInputs meta keys + the weak labels
# (cervdet.datasets.weak_coco.WEAK_META_KEYS / WEAK_TEST_META_KEYS).
weak_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                  'scale_factor', 'flip', 'flip_direction', 'img_labels',
                  'has_boxes')
weak_test_meta_keys = weak_meta_keys + ('instances', )

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=num_max_proposals),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='ProposalBroadcaster',
        transforms=[
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackDetInputs', meta_keys=weak_meta_keys)
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', num_max_proposals=num_max_proposals),
    dict(
        type='ProposalBroadcaster',
        transforms=[dict(type='Resize', scale=img_scale, keep_ratio=True)]),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=weak_test_meta_keys)
]
train_dataloader = dict(
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='WeakCocoDataset',
        box_fraction=0.0,
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/'),
        proposal_file='proposals/train.pkl',
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='WeakCocoDataset',
        data_root=data_root,
        proposal_file='proposals/val.pkl',
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        type='WeakCocoDataset',
        data_root=data_root,
        proposal_file='proposals/test.pkl',
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
]
test_evaluator = [
    dict(val_evaluator[0], ann_file=data_root + 'annotations/test.json'),
    dict(type='CorLocMetric', iou_thr=0.5),
]
