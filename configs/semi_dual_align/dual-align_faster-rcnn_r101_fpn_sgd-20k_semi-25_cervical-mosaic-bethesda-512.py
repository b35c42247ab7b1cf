# The paper setting (./dual-align_faster-rcnn_r50_fpn_sgd-20k_semi-25_...)
# with a ResNet-101 backbone (ImageNet weights from torchvision; offline, set
# model.detector.backbone.init_cfg=None or point it at a local file, e.g. a
# DINO backbone from tools/ssl/convert_backbone.py).
_base_ = ['./dual-align_faster-rcnn_r50_fpn_sgd-20k_semi-25_cervical-mosaic-bethesda-512.py']
model = dict(
    detector=dict(
        backbone=dict(
            depth=101,
            init_cfg=dict(type='Pretrained',
                          checkpoint='torchvision://resnet101'))))
