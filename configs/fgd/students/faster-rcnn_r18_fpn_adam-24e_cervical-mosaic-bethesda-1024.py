# Faster R-CNN R18-FPN (ImageNet-initialised, 256-channel FPN) on the 1024
# cervical mosaic set, trained without distillation: the student of
# ../fgd_faster-rcnn_r18_fpn_adam-24e_cervical-mosaic-bethesda-1024.py and the
# config its student-only checkpoints load into.
_base_ = ['../teachers/faster-rcnn_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py']
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
