# PCN patch set cut from the 1024 mosaic set by
#   python tools/dataset_converters/build_pcn_patches.py \
#       --coco-root data/cervical-mosaic-bethesda-1024 \
#       --out-dir data/cervical-pcn-patches-bethesda-1024
# (patch regions: box x1.5, square, 224 px; the stage-3 patch_cfg must match).
dataset_type = 'CustomDataset'
data_root = 'data/cervical-pcn-patches-bethesda-1024/'
classes = ('normal', 'abnormal')

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Cells have no orientation on a slide.
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='',
        with_label=True,
        metainfo=dict(classes=classes),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='',
        with_label=True,
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader, dataset=dict(val_dataloader['dataset'], ann_file='meta/test.txt'))
# Accuracy (top-1, %) and ROC-AUC of abnormal vs normal (%, cervdet's ROCAUC).
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='ROCAUC', normal_index=0)
]
test_evaluator = val_evaluator
