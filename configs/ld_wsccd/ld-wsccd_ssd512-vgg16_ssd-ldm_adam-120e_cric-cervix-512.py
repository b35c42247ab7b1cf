# LD-WSCCD Table 4 row "SSD+LDM": the "SSD" row's detector
# (./ld-wsccd_ssd512-vgg16_ssd_...) trained with the local distillation
# mechanism, exactly Eq. (9)-(14) (the ld_wsccd preset of
# ../fgd/_base_/fgd_presets.py: binary ground-truth-box mask of Eq. (9),
# Eq. (12) without FGD's scale mask, Eq. (13) as mean absolute errors, Eq.
# (14) without FGD's global term) from a frozen RetinaNet R50-FPN teacher
# (../fgd/teachers/retinanet_r50_fpn_adam-24e_cric-cervix-512.py): SSD levels
# 0-4 (strides 8-128) <- P3-P7, 1x1 align convs. No MIL detector, so the
# mask is the ground-truth boxes alone (fg_boxes='gt'). Train the teacher
# first (./README.md).
_base_ = [
    './ld-wsccd_ssd512-vgg16_ssd_adam-120e_cric-cervix-512.py',
    '../fgd/_base_/fgd_presets.py'
]
teacher_config = \
    '{{ fileDirname }}/../fgd/teachers/retinanet_r50_fpn_adam-24e_cric-cervix-512.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/retinanet_r50_fpn_adam-24e_cric-cervix-512/epoch_24.pth'
model = dict(
    _delete_=True,
    type='FGDDistiller',
    student=_base_.model,
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_ckpt,
    # Eq. (9): M from the ground-truth boxes
    fg_boxes='gt',
    feature_pairs=[
        dict(name=f'ssd{i}', student=f'neck[{i}]', teacher=f'neck[{i}]',
             loss=dict(_base_.ld_wsccd, student_channels=c,
                       teacher_channels=256))
        for i, c in enumerate((512, 1024, 512, 256, 256))
    ])
custom_hooks = [
    dict(type='FGDDistillHook', warmup_iters=500, validate_teacher=True,
         max_keep_student_ckpts=3)
]
# SSD levels 5-6 are not distilled; with the SSD head they all get gradient.
