# CPU-sized FGD run: the CPU RetinaNet (configs/retinanet/retinanet_r18-w32_
# fpn_adam-20e_1xb4_...-512.py: narrow ResNet-18 from scratch, same data, input size and
# schedule) as student <- the CPU teacher (full-width ResNet-18, 128-channel
# FPN, teachers/retinanet_r18_fpn-128_adam-20e_1xb4_...-512.py). FGD's RetinaNet
# weights on the five FPN levels, 1x1 align convs student -> 128 channels.
# Runs in minutes on a CPU; what it reaches is in configs/fgd/README.md.
_base_ = [
    '../retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py',
    './_base_/fgd_presets.py'
]

teacher_config = \
    '{{ fileDirname }}/teachers/retinanet_r18_fpn-128_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/retinanet_r18_fpn-128_adam-20e_1xb4_cervical-mosaic-bethesda-512/epoch_20.pth'  # noqa: E501
fgd_loss = dict(
    _base_.fgd_retinanet,
    # follows the student config (its FPN width may be tuned there)
    student_channels=_base_.model.neck.out_channels,
    teacher_channels=128)
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
custom_hooks = [dict(type='DistillationHook', warmup_iters=20)]
