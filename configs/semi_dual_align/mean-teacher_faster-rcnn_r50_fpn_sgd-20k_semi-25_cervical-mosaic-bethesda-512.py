# Mean Teacher baseline on the same split and schedule: mmdet's
# SemiBaseDetector (student trained on the teacher's pseudo boxes with a score
# > cls_pseudo_thr on the strong view; EMA teacher by MeanTeacherHook), no
# metric learning.
_base_ = ['./dual-align_faster-rcnn_r50_fpn_sgd-20k_semi-25_cervical-mosaic-bethesda-512.py']
model = dict(
    _delete_=True,
    type='SemiBaseDetector',
    detector=_base_.detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=_base_.detector.data_preprocessor),
    semi_train_cfg=dict(
        freeze_teacher=True,
        sup_weight=1.0,
        unsup_weight=1.0,
        cls_pseudo_thr=0.5,
        min_pseudo_bbox_wh=(1e-2, 1e-2)),
    semi_test_cfg=dict(predict_on='teacher'))
