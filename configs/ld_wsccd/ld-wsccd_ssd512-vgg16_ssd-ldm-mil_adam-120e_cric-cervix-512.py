# LD-WSCCD, the full model (Table 4 row "LD-WSCCD"; Yin et al., IEEE Access
# 2024, Sec. III.D, our reading: ./README.md): the SSD+MIL detector
# (./ld-wsccd_ssd512-vgg16_ssd-mil_...: SSD512 with the priors of Eq. (4),
# MultiBox loss Eq. (5)-(7), MIL detector on the fused multi-scale features
# with K = 3 OICR refinement stages, Eq. (15)-(16)) trained together with
# the local distillation, exactly Eq. (9)-(14) (the ld_wsccd preset), from a
# frozen RetinaNet R50-FPN teacher trained with the boxes of the CRIC
# training fields: SSD levels 0-4 <- P3-P7. The mask M of Eq. (9) is the
# ground-truth boxes plus the regions the aggregated refinement output
# picks (top-1 per image class; Sec. III.D.3, "the aggregated output from k
# optimization stages is utilized as the supervised information for the
# feature distillation process": fg_boxes='gt+student'). Total loss: L_dis +
# L_cls + L_ref (+ the SSD's MultiBox loss). Train the teacher first.
_base_ = [
    './ld-wsccd_ssd512-vgg16_ssd-mil_adam-120e_cric-cervix-512.py',
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
    fg_boxes='gt+student',
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
