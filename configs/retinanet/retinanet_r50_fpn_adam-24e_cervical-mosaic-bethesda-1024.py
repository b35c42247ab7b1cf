# Stage 1 of Fei et al. (MICCAI 2023): RetinaNet R50-FPN at 1024x1024, Adam
# lr 4e-5, on the cervical mosaic set (5 abnormal Bethesda classes).
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/cervical_mosaic_bethesda_1024.py',
    '../_base_/schedules/adam_24e.py', '../_base_/default_runtime.py'
]
