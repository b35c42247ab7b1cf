# FGD: RetinaNet R18-FPN student <- RetinaNet R50-FPN teacher (the paper
# baseline, configs/retinanet/retinanet_r50_fpn_adam-24e_...-1024.py) on the
# 1024 cervical mosaic set, FGD's RetinaNet weights on the five FPN levels.
# Both FPNs have 256 channels: no align conv. Train the teacher first
# (configs/fgd/README.md).
_base_ = [
    './students/retinanet_r18_fpn_adam-24e_cervical-mosaic-bethesda-1024.py',
    './_base_/fgd_presets.py'
]

teacher_config = \
    '{{ fileDirname }}/../retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024/epoch_24.pth'  # noqa: E501
fgd_loss = dict(
    _base_.fgd_retinanet, student_channels=256, teacher_channels=256)
model = dict(
    _delete_=True,
    type='FeatureDistiller',
    student=_base_.model,
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_ckpt,
    feature_pairs=[
        dict(name=f'fpn{i}', student=f'neck.fpn_convs.{i}.conv',
             teacher=f'neck.fpn_convs.{i}.conv', loss=fgd_loss)
        for i in range(5)
    ])
custom_hooks = [dict(type='DistillationHook', warmup_iters=200)]
