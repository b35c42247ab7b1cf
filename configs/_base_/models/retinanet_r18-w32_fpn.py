# The CPU RetinaNet: a half-width ResNet-18 ("r18-w32": stem and base 32
# channels, 256-d C5), FPN and head 64 channels wide, 2 stacked head convs,
# no pre-trained weights (set backbone.init_cfg to start from cervdet's own
# DINO backbone, tools/ssl/convert_backbone.py).
_base_ = './retinanet_r50_fpn.py'
model = dict(
    backbone=dict(
        depth=18,
        stem_channels=32,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=2))
