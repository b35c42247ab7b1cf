# OICR (Tang et al., CVPR 2017) on VGG16 features for the 5 abnormal Bethesda
# classes: SSD's VGG16 (conv4_3 at stride 8, 512 channels; fc7 at stride 16,
# 1024 channels), RoIAlign 7x7 on fc7, two shared FCs, the two-stream MIL
# branch and K = 3 refinement classifiers (top-1 pseudo labels). ImageNet
# weights (caffe VGG16) come from open-mmlab:// when the machine can reach
# it; offline, set
# model.backbone.init_cfg=None.
_base_ = ['./ssd512_vgg16.py']
# SSD's VGG16 and normalisation (std 1), padded to a multiple of 32.
model = dict(
    _delete_=True,
    type='WSODDetector',
    data_preprocessor=dict(
        _base_.model.data_preprocessor, pad_size_divisor=32),
    backbone=_base_.model.backbone,
    feat_levels=(1, ),
    roi_head=dict(
        type='OICRHead',
        num_classes=5,
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=1024,
            featmap_strides=[16]),
        num_shared_fcs=2,
        fc_out_channels=1024,
        dropout_ratio=0.5,
        num_refine_stages=3,
        fg_iou_thr=0.5,
        bg_ignore_iou_thr=None,
        # OICR (Sec. 3.3): the top-scoring proposal per image class is the
        # pseudo box. Option: pseudo_label='top_ratio' (the top 10 % of the
        # proposals per class, NMS 0.3: many abnormal cells of a class)
        pseudo_label='top1',
        top_ratio=0.1,
        pseudo_nms_thr=0.3,
        # OICR Eq. (2) sums the BCE over the C classes; the loss averages it
        loss_mil_weight=5.0,
        test_cfg=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.3),
            max_per_img=100)))
