# Teacher for the Faster R-CNN preset: Faster R-CNN R50-FPN (MMDetection's
# model, 5 Bethesda classes) on the 1024 cervical mosaic set with the paper
# baseline's schedule (Adam lr 4e-5, 24 epochs).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../../_base_/datasets/cervical_mosaic_bethesda_1024.py',
    '../../_base_/schedules/adam_24e.py', '../../_base_/default_runtime.py'
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
