# Teacher of the SSD512 student: RetinaNet R50-FPN (ImageNet-initialised) on
# the 512 cervical mosaic set, the schedule of the paper baseline (Adam lr
# 4e-5, 24 epochs). Its P3-P7 levels (256 channels, strides 8-128) match
# SSD512's first five levels at 512x512 input.
_base_ = [
    '../../_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/cervical_mosaic_bethesda_512.py',
    '../../_base_/schedules/adam_24e.py', '../../_base_/default_runtime.py'
]
