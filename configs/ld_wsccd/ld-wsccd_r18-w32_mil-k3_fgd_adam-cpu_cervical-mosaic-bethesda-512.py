# CPU-sized LD-WSCCD full model: the CPU OICR student (../oicr/oicr_r18-w32_
# adam-cpu_...: half-width ResNet-18 from scratch, RoIs on its stride-16
# stage, 384 px, K = 3) <- the CPU FGD teacher (../fgd/teachers/retinanet_
# r18_fpn-128_adam-cpu_...: full-width ResNet-18, 128-channel FPN), trained
# together: loss_mil + loss_ref1..3 + loss_fgd_c3/c4. Pairs on matching
# strides: the student's stride-8 stage (64 ch, 1x1 align conv to 128) <-
# P3, its stride-16 stage (128 ch, the RoI features) <- P4. Teacher-box
# masks as in the full model. Not a paper setting: it exists so the whole
# pipeline runs on a CPU in minutes (./README.md); its student-only
# checkpoints load into the CPU OICR config.
_base_ = [
    '../oicr/oicr_r18-w32_adam-cpu_cervical-mosaic-bethesda-512.py',
    '../fgd/_base_/fgd_presets.py'
]
teacher_config = \
    '{{ fileDirname }}/../fgd/teachers/retinanet_r18_fpn-128_adam-cpu_cervical-mosaic-bethesda-512.py'  # noqa: E501
teacher_ckpt = \
    'work_dirs/retinanet_r18_fpn-128_adam-cpu_cervical-mosaic-bethesda-512/epoch_20.pth'  # noqa: E501
# The student also returns its stride-8 stage (out_indices 1, 2); the head
# still reads the stride-16 one (feat_levels=(1, )): same weights as the
# CPU OICR student.
student = dict(
    _base_.model,
    backbone=dict(_base_.model.backbone, out_indices=(1, 2)),
    feat_levels=(1, ))
model = dict(
    _delete_=True,
    type='FGDDistiller',
    student=student,
    teacher_cfg=teacher_config,
    teacher_ckpt=teacher_ckpt,
    fg_boxes='gt_or_teacher',
    teacher_score_thr=0.3,
    teacher_max_boxes=100,
    feature_pairs=[
        dict(name='c3', student='backbone[0]',
             teacher='neck.fpn_convs.0.conv',
             loss=dict(_base_.fgd_retinanet, student_channels=64,
                       teacher_channels=128)),
        dict(name='c4', student='backbone[1]',
             teacher='neck.fpn_convs.1.conv',
             loss=dict(_base_.fgd_retinanet, student_channels=128,
                       teacher_channels=128)),
    ])
custom_hooks = [dict(type='FGDDistillHook', warmup_iters=20)]
