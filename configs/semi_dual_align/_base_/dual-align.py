# The dual-alignment model of Chai et al. (ISBI 2022) without its detector
# (variables only: a config puts its detector into ``dual_align``, e.g.
#   model = dict(_base_.dual_align, _delete_=True, detector=detector, ...)):
# - one network, no teacher: unlabeled proposals labeled by thresholding the
#   network's own prediction at 0.5 (Eq. 3, Sec. 2.3);
# - proxy alignment Eq. (2)-(3) (denominator without the true class), proxies
#   randomly initialised and trained by SGD at lr 0.01 (Sec. 2.3:
#   ``dual_align_paramwise_cfg``, 2 x the base lr 0.005, decayed with it);
# - prototype alignment Eq. (4)-(8), three terms each, margin 1.0, memory
#   bank of 1024 ground-truth-guided labeled prototypes (Sec. 2.2-2.3).
# Not given by the paper: the ramp-up length T of lambda(t) (4000
# iterations) and the projection head's sizes (1024 -> 128).
dual_align = dict(
    type='DualAlignFasterRCNN',
    pseudo_labeler='self',
    feature_source='bbox_head',
    metric_head=dict(
        type='MetricProjectionHead', hidden_channels=1024, out_channels=128),
    proxy_loss=dict(type='ProxyMetricLoss', denominator='exclude_true'),
    prototype_loss=dict(
        type='PrototypeAlignmentLoss',
        margin=1.0,
        normalize='num_classes',
        with_batch_inter=True),
    bank_size=1024,
    labeled_source='gt+pos',
    labeled_confidence='score',
    with_proxy=True,
    with_prototype=True,
    semi_train_cfg=dict(
        sup_weight=1.0,
        unsup_weight=1.0,
        score_thr=0.5,
        rampup_iters=4000),
    semi_test_cfg=dict(predict_on='student'))
# proxies: SGD from lr 0.01 (Sec. 2.3) = 2 x the base lr 0.005
dual_align_paramwise_cfg = dict(
    custom_keys={'proxy_loss.proxies': dict(lr_mult=2.0)})
