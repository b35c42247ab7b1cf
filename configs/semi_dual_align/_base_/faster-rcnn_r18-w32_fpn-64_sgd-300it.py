# The CPU size shared by the semi-supervised and the supervised CPU configs:
# a half-width ResNet-18 (base 32 channels) from scratch, 64-channel FPN and
# heads (merged into a Faster R-CNN R50-FPN model dict), and a 300-iteration
# schedule. Not a paper setting.
cpu_faster_rcnn = dict(
    backbone=dict(
        depth=18,
        stem_channels=32,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
cpu_max_iters = 300
cpu_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=cpu_max_iters, by_epoch=False,
         milestones=[200, 270], gamma=0.1)
]
