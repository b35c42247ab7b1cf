# RetinaNet R18-FPN (ImageNet-initialised, 256-channel FPN) on the 1024
# cervical mosaic set with the paper baseline's schedule (Adam lr 4e-5, 24
# epochs), trained without distillation: the student of
# ../fgd_retinanet_r18_fpn_adam-24e_cervical-mosaic-bethesda-1024.py and the
# config its student-only checkpoints load into.
_base_ = [
    '../../_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/cervical_mosaic_bethesda_1024.py',
    '../../_base_/schedules/adam_24e.py', '../../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
