# CPU-sized teacher for ../fgd_retinanet_r18-w32_fpn_adam-20e_1xb4_...-512.py: the CPU
# RetinaNet's data, input size and schedule with a full-width ResNet-18 (from
# scratch) and a 128-channel FPN and head. Not a paper setting: it exists so
# a whole teacher -> student distillation runs on a CPU in minutes.
_base_ = ['../../retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py']
model = dict(
    backbone=dict(depth=18, stem_channels=64, base_channels=64),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
