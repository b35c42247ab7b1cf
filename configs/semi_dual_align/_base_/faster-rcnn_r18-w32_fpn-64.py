# The CPU Faster R-CNN as a model base, for the configs composed from bases
# (the CRIC comparison, ../*_cric-cervix-512.py): mmdet's Faster R-CNN
# R50-FPN with the half-width ResNet-18 from scratch, 64-channel FPN and
# heads of ./faster-rcnn_r18-w32_fpn-64_sgd-300it.py, 5 classes. The same
# network as the CPU mosaic configs (there merged into the paper's ResNet-101
# model). Not a paper setting.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './faster-rcnn_r18-w32_fpn-64_sgd-300it.py'
]
model = _base_.cpu_faster_rcnn
