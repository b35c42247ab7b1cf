# Data of the DINO pre-training configs.
#
# Train: unlabeled tiles, every image under ``data_root`` (any size, any
# sub-folders), e.g. cut from large fields / whole slides with
#   python tools/ssl/extract_tiles.py ... --out-dir data/cervical-tiles
# Each tile gives two global views (DINO's two global transforms: blur
# p=1.0 / blur p=0.1 + solarisation p=0.2) and, optionally, local views.
# Local crops are OFF by default: Stegmueller et al. (ISBI 2023) found them
# harmful on non-object-centric cytology tiles. ``*_local8`` pipelines add
# DINO's default 8 local crops; use one with
#   train_dataloader = dict(dataset=dict(
#       pipeline={{_base_.train_pipeline_vit_224_local8}}))
#
# Crop scales (fraction of the tile area), from the official DINO code
# (facebookresearch/dino, main_dino.py and its ResNet-50 recipe):
# - ResNet-50 recipe: ``--global_crops_scale 0.14 1 --local_crops_scale
#   0.05 0.14``;
# - ViT defaults: global (0.4, 1.), local (0.05, 0.4); main_dino.py's help:
#   "When disabling multi-crop (--local_crops_number 0), we recommend using
#   a wider range of scale (--global_crops_scale 0.14 1.)", so the two-view
#   ViT pipeline uses (0.14, 1.) and the 8-local-crop one (0.4, 1.).
#
# Validation (k-NN probing, logs collapse): a labeled crop folder, one
# sub-folder per class (Herlev by default, beside the project at
# ../shared/data/herlev; the Bethesda crops ../shared/data/cric_crops_bethesda
# work the same), features of the teacher, KNNMetric.
dataset_type = 'CustomDataset'
data_root = 'data/cervical-tiles/'
knn_data_root = '../shared/data/herlev/'

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)


def _view(size, scale, blur_prob, solarize_prob):
    """One DINO view: random resized crop, flip, colour jitter (p=0.8),
    grayscale (p=0.2), Gaussian blur, solarisation."""
    return [
        dict(type='RandomResizedCrop', scale=size, crop_ratio_range=scale,
             interpolation='bicubic', backend='pillow'),
        dict(type='RandomFlip', prob=0.5),
        # torchvision's ColorJitter (DINO's own): mmcv 2.1's adjust_hue fails
        # on negative hue shifts under numpy 2 ("-8 out of bounds for uint8")
        dict(type='NumpyToPIL', to_rgb=True),
        dict(type='RandomApply',
             transforms=[dict(type='torchvision/ColorJitter', brightness=0.4,
                              contrast=0.4, saturation=0.2, hue=0.1)],
             prob=0.8),
        dict(type='PILToNumpy', to_bgr=True),
        dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
             channel_weights=(0.114, 0.587, 0.2989)),
        dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
             magnitude_std='inf', prob=blur_prob),
        dict(type='Solarize', thr=128, prob=solarize_prob),
    ]


def _multicrop(global_size, global_scale, local_size=96,
               local_scale=(0.05, 0.4), num_local_crops=0):
    """LoadImageFromFile + MultiView (global views first) + PackInputs."""
    views = [_view(global_size, global_scale, 1.0, 0.),
             _view(global_size, global_scale, 0.1, 0.2)]
    num_views = [1, 1]
    if num_local_crops:
        views.append(_view(local_size, local_scale, 0.5, 0.))
        num_views.append(num_local_crops)
    return [
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=num_views, transforms=views),
        dict(type='PackInputs')
    ]


def _knn_pipeline(size):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(size, size), backend='pillow',
             interpolation='bicubic'),
        dict(type='PackInputs')
    ]


# official sizes: global 224, local 96
train_pipeline_resnet_224 = _multicrop(224, (0.14, 1.))
train_pipeline_resnet_224_local8 = _multicrop(224, (0.14, 1.), 96,
                                              (0.05, 0.14), 8)
train_pipeline_vit_224 = _multicrop(224, (0.14, 1.))
train_pipeline_vit_224_local8 = _multicrop(224, (0.4, 1.), 96, (0.05, 0.4), 8)
# CPU size: global 96, local 48 (ours, for the CPU measurements)
train_pipeline_cpu_96 = _multicrop(96, (0.14, 1.))
train_pipeline_cpu_96_local6 = _multicrop(96, (0.14, 1.), 48, (0.05, 0.14), 6)
knn_pipeline_224 = _knn_pipeline(224)
knn_pipeline_96 = _knn_pipeline(96)

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # MultiView gives a list of views: stack each view over the batch
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='',
        with_label=False,
        pipeline=train_pipeline_resnet_224))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=knn_data_root,
        data_prefix='',
        with_label=True,
        pipeline=knn_pipeline_224))
# weighted k-NN (cosine, T=0.07) over 4 random stratified 75/25 splits
# (Stegmueller et al. Sec. 3.1: 4 runs; KNNMetric's default)
val_evaluator = dict(type='KNNMetric', topk=(10, 20))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
