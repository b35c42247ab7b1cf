# NOT the paper: dual alignment with the pseudo labels of an EMA teacher
# (Mean Teacher style, an option). Chai et al. label the unlabeled proposals
# with the network's own prediction (Eq. 3) and have no teacher; here an EMA
# copy (MeanTeacherHook, momentum 0.001) predicts on a weak view and its
# detections with a score > 0.5 are mapped to a strong view, whose
# embeddings enter the same losses (as mmdet's SoftTeacher does).
_base_ = ['./dual-align_faster-rcnn_r101_fpn_sgd-120k_semi-25_cervical-mosaic-bethesda-512.py']
model = dict(
    pseudo_labeler='ema_teacher',
    semi_train_cfg=dict(freeze_teacher=True,
                        min_pseudo_bbox_wh=(1e-2, 1e-2)),
    semi_test_cfg=dict(predict_on='teacher'))
labeled_dataset = dict(_base_.labeled_dataset,
                       pipeline=_base_.teacher_sup_pipeline)
unlabeled_dataset = dict(_base_.unlabeled_dataset,
                         pipeline=_base_.teacher_unsup_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_cfg = dict(type='TeacherStudentValLoop')
# ImageNet R101 with frozen BN (norm_eval=True): averaging the parameters is
# enough; a model that trains its BN statistics needs skip_buffer=False.
custom_hooks = [dict(type='MeanTeacherHook', momentum=0.001)]
