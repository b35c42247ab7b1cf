# LD-WSCCD, the full model ("all"; Yin et al., IEEE Access 2024, our
# reading: ./README.md): the SSD512 (VGG16) feature MIL detector with K = 3
# OICR refinement stages (L_cls = loss_mil, L_ref = loss_ref1..3) and local
# FGD distillation (L_dis = loss_fgd_ssd0..4) from a frozen RetinaNet R50-FPN
# teacher trained on box-annotated 512 mosaics, trained together. SSD levels
# 0-4 (512, 1024, 512, 256, 256 channels, strides 8-128) <- the teacher's
# P3-P7 (256 channels); 1x1 convs align the channels. The foreground mask of
# FGD comes from the teacher's detections (score >= 0.3, at most 100 per
# image) for images without boxes, i.e. every image of the weak training
# set, and from the ground truth where boxes are kept (box_fraction > 0).
# Train the teacher first (./README.md).
_base_ = [
    './ld-wsccd_ssd512-vgg16_mil-k3_adam-120e_cervical-mosaic-bethesda-512.py',
    '../fgd/_base_/fgd_presets.py'
]
teacher_config = \
    '{{ fileDirname }}/../fgd/teachers/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-512.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-512/epoch_24.pth'  # noqa: E501
# FGD's RetinaNet weights (untuned here; LD-WSCCD's are not reproduced).
fgd_loss = dict(_base_.fgd_retinanet, teacher_channels=256)
model = dict(
    _delete_=True,
    type='FGDDistiller',
    student=_base_.model,
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_ckpt,
    fg_boxes='gt_or_teacher',
    teacher_score_thr=0.3,
    teacher_max_boxes=100,
    feature_pairs=[
        dict(name=f'ssd{i}', student=f'neck[{i}]', teacher=f'neck[{i}]',
             loss=dict(fgd_loss, student_channels=c))
        for i, c in enumerate((512, 1024, 512, 256, 256))
    ])
custom_hooks = [
    dict(type='FGDDistillHook', warmup_iters=500, validate_teacher=True,
         max_keep_student_ckpts=3)
]
