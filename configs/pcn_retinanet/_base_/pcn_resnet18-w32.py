# CPU-sized PCN for tests and the CPU ablation: a half-width ResNet-18 (stem
# and base 32 channels) from scratch, same interface as the paper's
# SE-ResNeXt-50 PCN (pcn_seresnext50-32x4d.py). Its local-scale feature
# (stage 1) has 32 channels. Not a paper setting.
pcn_model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=2,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=2,
        in_channels=256,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
