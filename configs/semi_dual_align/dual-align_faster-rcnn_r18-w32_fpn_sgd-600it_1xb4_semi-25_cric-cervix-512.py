# Dual alignment (Chai et al., ISBI 2022) in the CPU size of
# ./dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_cervical-mosaic-
# bethesda-512.py
# on the real CRIC fields (issue 19): 25 % labeled fields + the one
# unlabeled pool of split_semi.py (Sec. 3.2 protocol; 19 + 76 of the 151
# training fields, seed 0), batch 2 labeled + 2 unlabeled (Sec. 2.3 "equally
# sampled"), the CRIC budget of ./_base_/cric_fields.py. Departures from the
# paper are those of the CPU mosaic config (half-width ResNet-18 from
# scratch instead of ImageNet ResNet-101, Sec. 3.1; 512x380 fields instead
# of 1200 px patches, Sec. 3.1; a few hundred iterations instead of 120k,
# Sec. 2.3; softmax proxy loss, Eq. 2): CPU size.
_base_ = [
    './dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_cervical-mosaic-bethesda-512.py',  # noqa: E501
    './_base_/cric_fields.py'
]
labeled_percent = 25
sup_pipeline = [
    dict(t, scale=_base_.cric_img_scale) if t['type'] == 'Resize' else t
    for t in _base_.sup_pipeline
]
unsup_pipeline = [
    dict(t, scale=_base_.cric_img_scale) if t['type'] == 'Resize' else t
    for t in _base_.unsup_pipeline
]
test_pipeline = [
    dict(t, scale=_base_.cric_img_scale) if t['type'] == 'Resize' else t
    for t in _base_.test_pipeline
]
labeled_dataset = dict(
    _base_.labeled_dataset,
    data_root=_base_.cric_data_root,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json',
    data_prefix=_base_.cric_img_prefix,
    pipeline=sup_pipeline)
unlabeled_dataset = dict(
    _base_.unlabeled_dataset,
    data_root=_base_.cric_data_root,
    ann_file='annotations/semi/train_unlabeled.json',
    data_prefix=_base_.cric_img_prefix,
    pipeline=unsup_pipeline)
train_dataloader = dict(
    num_workers=1,
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
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
