# FGD: Faster R-CNN R18-FPN student <- Faster R-CNN R50-FPN teacher on the
# 1024 cervical mosaic set, FGD's Faster R-CNN weights (alpha 5e-5, beta
# 2.5e-5, gamma 5e-5, lambda 5e-7) on FPN levels P2-P5 (P6 is a max-pool,
# no module: use 'neck[4]' to add it). Train the teacher first
# (configs/fgd/README.md).
_base_ = [
    './students/faster-rcnn_r18_fpn_adam-24e_cervical-mosaic-bethesda-1024.py',
    './_base_/fgd_presets.py'
]

teacher_config = \
    '{{ fileDirname }}/teachers/faster-rcnn_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/faster-rcnn_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024/epoch_24.pth'  # noqa: E501
fgd_loss = dict(
    _base_.fgd_faster_rcnn, student_channels=256, teacher_channels=256)
model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student=_base_.model,
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_ckpt,
    feature_pairs=[
        dict(name=f'fpn{i}', student=f'neck.fpn_convs.{i}.conv',
             teacher=f'neck.fpn_convs.{i}.conv', loss=fgd_loss)
        for i in range(4)
    ])
custom_hooks = [dict(type='DistillationHook', warmup_iters=200)]
