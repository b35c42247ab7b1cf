# Real CRIC Cervix Pap-smear fields (CRIC's expert nucleus points as boxes),
# built by tools/dataset_converters/cric_to_coco.py (label set abnormal5:
# ASC-US, ASC-H, LSIL, HSIL, SCC; NILM is background; per-field splits,
# seed 0). The shared JPEGs are 688x510 (half of CRIC's 1376x1020); the
# default box is 100 native px = 50 px at that size.
_base_ = './cervical_mosaic_bethesda_1024.py'
data_root = 'data/cric-cervix/'
img_scale = (688, 510)
train_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
# COCO AP beside the point metric (a detection hits a marked nucleus inside
# its box; abnormal recall/precision/F1, FROC, abnormal-as-one-class AP).
val_evaluator = [
    dict(_base_.val_evaluator, ann_file=data_root + 'annotations/val.json'),
    dict(type='PointHitMetric', ann_file=data_root + 'annotations/val.json')
]
test_evaluator = [
    dict(_base_.val_evaluator, ann_file=data_root + 'annotations/test.json'),
    dict(type='PointHitMetric', ann_file=data_root + 'annotations/test.json')
]
