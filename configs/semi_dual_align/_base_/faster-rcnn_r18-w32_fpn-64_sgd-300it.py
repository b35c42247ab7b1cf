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
        bbox_head=dict(in_channels=64, fc_out_channels=256,
                       num_classes=5)))
# the dual-alignment model's parts at this size (merged into
# ./dual-align.py's ``dual_align``): a 256 -> 64 projection head, the
# softmax form of the proxy loss (denominator='all', >= 0, the safer choice
# from scratch; the paper's Eq. 2 excludes the true class) and a 100-iteration
# ramp-up of lambda(t)
cpu_dual_align = dict(
    metric_head=dict(hidden_channels=256, out_channels=64),
    proxy_loss=dict(denominator='all'),
    semi_train_cfg=dict(rampup_iters=100))
# CPU runs: gradient clipping from scratch, logs every 10 iterations
cpu_optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
cpu_max_iters = 300
cpu_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=cpu_max_iters, by_epoch=False,
         milestones=[200, 270], gamma=0.1)
]
