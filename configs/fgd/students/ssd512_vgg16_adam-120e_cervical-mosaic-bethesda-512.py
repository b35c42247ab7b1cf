# SSD512 (VGG16) on the 512 cervical mosaic set, trained without
# distillation: the student of
# ../fgd_ssd512_vgg16_adam-120e_cervical-mosaic-bethesda-512.py and the config
# its student-only checkpoints load into (tools/test.py). The LD-WSCCD setting
# (Yin et al., IEEE Access 2024): 512x512 input, lr 1e-4, weight decay 5e-4,
# batch 10, 120 epochs. The optimizer is not given there; we use Adam.
_base_ = [
    '../../_base_/models/ssd512_vgg16.py',
    '../../_base_/datasets/cervical_mosaic_bethesda_512.py',
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/adam_120e_ld-wsccd.py'
]
input_size = 512
# SSD's augmentation (MMDetection's ssd512_coco.py) with flips both ways:
# cells have no orientation on a slide.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='Expand',
        mean=[123.675, 116.28, 103.53],
        to_rgb=True,
        ratio_range=(1, 2)),
    dict(
        type='MinIoURandomCrop',
        min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
        min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25, 0.25],
        direction=['horizontal', 'vertical', 'diagonal']),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# schedule: ../_base_/schedules/adam_120e_ld-wsccd.py (the LD-WSCCD setting)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
