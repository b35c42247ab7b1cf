# The LD-WSCCD detector (Yin et al., IEEE Access 2024, Sec. III.D; our
# reading: configs/ld_wsccd/README.md) for the 5 abnormal Bethesda classes:
# - SSD512 on VGG16 (SSDVGG + SSDNeck: 7 levels, 512/1024/512/256/256/256/256
#   channels at strides 8..512), SSDHead with the prior boxes of Eq. (4):
#   S_min 0.2, S_max 0.9 (SSDPriorBoxGenerator; mmdet's SSD512 uses
#   0.1-0.9 with a hand-set 4 % first level), MultiBox loss Eq. (5)-(7)
#   (loss_conf, loss_loc) on the images with boxes;
# - MIL regions: the priors ranked by the SSD's foreground score, regressed
#   by the SSD, class-agnostic NMS 0.7, 300 per image;
# - MIL detector: every region RoIAligned (7x7) on all 7 levels, 1x1 lateral
#   convs to 256 channels, summed (the fused multi-scale input), two shared
#   FCs (1024), the detection and classification streams (Eq. (15),
#   loss_mil) and K = 3 OICR refinement stages (Eq. (16), loss_ref1..3) on
#   top-1 pseudo labels per image class ("based on the concept of OICR").
# Not given in Sec. III.D (ours, configs/ld_wsccd/README.md): K = 3 (OICR's),
# the region count/NMS, the fusion operator (sum), the FC widths.
# The detections are the refinement output (mean of the K stages) over the
# regions. ImageNet weights (caffe VGG16) come from open-mmlab:// when the
# machine can reach it; offline, set model.backbone.init_cfg=None.
# (./ssd512_vgg16.py with the prior boxes of Eq. (4) and the MIL parts.)
input_size = 512
_ssd_levels = (512, 1024, 512, 256, 256, 256, 256)
_strides = [8, 16, 32, 64, 128, 256, 512]
model = dict(
    type='LDWSCCD',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[1, 1, 1],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='SSDVGG',
        depth=16,
        with_last_pool=False,
        ceil_mode=True,
        out_indices=(3, 4),
        out_feature_indices=(22, 34),
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://vgg16_caffe')),
    neck=dict(
        type='SSDNeck',
        in_channels=(512, 1024),
        out_channels=(512, 1024, 512, 256, 256, 256, 256),
        level_strides=(2, 2, 2, 2, 1),
        level_paddings=(1, 1, 1, 1, 1),
        last_kernel_size=4,
        l2_norm_scale=20),
    bbox_head=dict(
        # mmdet's SSDHead, able to predict under mmdet 3.3
        # (cervdet/models/dense_heads/ssd_multibox_head.py)
        type='SSDMultiBoxHead',
        in_channels=(512, 1024, 512, 256, 256, 256, 256),
        num_classes=5,
        anchor_generator=dict(
            type='SSDPriorBoxGenerator',
            strides=_strides,
            ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
            input_size=512,
            # Eq. (4): S_min 0.2, S_max 0.9 (Sec. III.D.1.b)
            scale_range=(0.2, 0.9)),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.02,
        max_per_img=100),
    mil_regions=dict(
        source='ssd',
        nms_pre=1000,
        iou_threshold=0.7,
        max_per_img=300,
        min_size=2.),
    mil_feat_levels=None,
    predict_with='mil',
    mil_head=dict(
        type='OICRHead',
        num_classes=5,
        bbox_roi_extractor=dict(
            type='MultiScaleFusionRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            in_channels=_ssd_levels,
            level_channels=256,
            featmap_strides=_strides,
            fusion='sum'),
        # "two fully connected layers" (Sec. III.D, III.D.3)
        num_shared_fcs=2,
        fc_out_channels=1024,
        dropout_ratio=0.5,
        num_refine_stages=3,
        fg_iou_thr=0.5,
        bg_ignore_iou_thr=None,
        # OICR: the top-scoring region per image class is the pseudo box
        pseudo_label='top1',
        # the MIL detector learns from image labels only (Eq. (15)-(16));
        # the boxes supervise the SSD (Eq. (5)-(7)) and the mask (Eq. (9))
        use_gt_bboxes=False,
        # Eq. (15) sums the BCE over the C classes; mil_loss averages it
        loss_mil_weight=5.0,
        test_cfg=dict(
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.3),
            max_per_img=100)))
