# Chai et al., "Deep semi-supervised metric learning with dual alignment for
# cervical cancer cell detection" (ISBI 2022): Faster R-CNN R50-FPN student
# and EMA teacher, proxy + prototype alignment, 25 % labeled 512 mosaics,
# SGD lr 0.005 momentum 0.9 with step decay (the paper's optimiser; the
# iteration budget and milestones are ours, the paper gives none here).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/semi_cervical_mosaic_bethesda_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_20k_semi.py'
]
detector = _base_.model
detector.roi_head.bbox_head.num_classes = 5

model = dict(
    _delete_=True,
    type='DualAlignFasterRCNN',
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor),
    metric_head=dict(
        type='MetricProjectionHead', hidden_channels=1024, out_channels=128),
    proxy_loss=dict(type='ProxyMetricLoss', denominator='exclude_true'),
    prototype_loss=dict(type='PrototypeAlignmentLoss', margin=1.0),
    bank_size=1024,
    labeled_source='gt+pos',
    labeled_confidence='score',
    with_proxy=True,
    with_prototype=True,
    semi_train_cfg=dict(
        freeze_teacher=True,
        sup_weight=1.0,
        unsup_weight=1.0,
        score_thr=0.5,
        rampup_iters=4000,
        min_pseudo_bbox_wh=(1e-2, 1e-2)),
    semi_test_cfg=dict(predict_on='teacher'))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=_base_.max_iters,
                 val_interval=2000)
val_cfg = dict(type='TeacherStudentValLoop')
test_cfg = dict(type='TestLoop')
# param_scheduler, optim_wrapper: ../_base_/schedules/sgd_20k_semi.py
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='MeanTeacherHook', momentum=0.001)]
