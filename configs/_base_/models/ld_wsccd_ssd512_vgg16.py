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
_base_ = ['./ssd512_vgg16.py']
_ssd_levels = (512, 1024, 512, 256, 256, 256, 256)
_strides = [8, 16, 32, 64, 128, 256, 512]
model = dict(
    type='LDWSCCD',
    bbox_head=dict(
        anchor_generator=dict(
            _delete_=True,
            type='SSDPriorBoxGenerator',
            strides=_strides,
            ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
            input_size=512,
            # Eq. (4): S_min 0.2, S_max 0.9 (Sec. III.D.1.b)
            scale_range=(0.2, 0.9))),
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
