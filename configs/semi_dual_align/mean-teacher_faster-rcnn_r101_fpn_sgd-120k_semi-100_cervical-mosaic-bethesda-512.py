# Table 2 baseline "Mean Teacher [18]" of Chai et al. (Sec. 3.3), with all
# labeled and unlabeled data and the paper config's backbone and schedule:
# mmdet's SemiBaseDetector (student trained on the EMA teacher's pseudo
# boxes with a score > 0.5 on a strong view; MeanTeacherHook), no metric
# learning. The paper gives no hyper-parameter of its Mean Teacher; these
# are mmdet's.
_base_ = ['./dual-align_faster-rcnn_r101_fpn_sgd-120k_semi-100_cervical-mosaic-bethesda-512.py']
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
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=_base_.optim_wrapper.optimizer)
labeled_dataset = dict(_base_.labeled_dataset,
                       pipeline=_base_.teacher_sup_pipeline)
unlabeled_dataset = dict(_base_.unlabeled_dataset,
                         pipeline=_base_.teacher_unsup_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_cfg = dict(type='TeacherStudentValLoop')
custom_hooks = [dict(type='MeanTeacherHook', momentum=0.001)]
