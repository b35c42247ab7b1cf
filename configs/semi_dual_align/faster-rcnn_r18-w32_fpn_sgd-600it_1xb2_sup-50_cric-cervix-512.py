# ./faster-rcnn_r18-w32_fpn_sgd-600it_1xb2_sup-25_cric-cervix-512.py on the 50 %
# labeled fields (38 of the 151 training fields, a superset of the 25 %).
# (written out on the same bases as the 25 % config)
_base_ = [
    './faster-rcnn_r18-w32_fpn_sgd-300it_1xb2_sup-25_cervical-mosaic-bethesda-512.py',
    './_base_/cric_fields.py'
]
labeled_percent = 50
train_pipeline = [
    dict(t, scale=_base_.cric_img_scale) if t['type'] == 'Resize' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, scale=_base_.cric_img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=_base_.cric_data_root,
        ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json',
        data_prefix=_base_.cric_img_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=_base_.cric_data_root,
        ann_file='annotations/val.json',
        data_prefix=_base_.cric_img_prefix,
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        data_root=_base_.cric_data_root,
        ann_file='annotations/test.json',
        data_prefix=_base_.cric_img_prefix,
        pipeline=test_pipeline))
val_evaluator = _base_.cric_val_evaluator
test_evaluator = _base_.cric_test_evaluator
train_cfg = _base_.cric_train_cfg
param_scheduler = _base_.cric_param_scheduler
default_hooks = dict(checkpoint=_base_.cric_checkpoint)
