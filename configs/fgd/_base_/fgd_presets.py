# FGDLoss weight presets of Focal and Global Distillation (Yang et al., CVPR
# 2022), per student family. Configs pick one and add the channel counts:
#   fgd_loss = dict(_base_.fgd_retinanet, student_channels=.., teacher_channels=..)
# The RetinaNet preset is FGDLoss's default (configs/fgd/README.md, presets).
fgd_retinanet = dict(
    type='FGDLoss',
    temp=0.5,
    alpha_fgd=1e-3,
    beta_fgd=5e-4,
    gamma_fgd=1e-3,
    lambda_fgd=5e-6)
fgd_faster_rcnn = dict(
    type='FGDLoss',
    temp=0.5,
    alpha_fgd=5e-5,
    beta_fgd=2.5e-5,
    gamma_fgd=5e-5,
    lambda_fgd=5e-7)
# LD-WSCCD's local distillation (Yin et al., IEEE Access 2024, Sec. III.D.2),
# exactly Eq. (9)-(14): the binary ground-truth-box mask M of Eq. (9) (no FGD
# scale mask), Eq. (12) summed over C, H, W with the teacher's attention,
# Eq. (13) as mean absolute errors, Eq. (14) L_dis = L_fea + L_att (no FGD
# global term: lambda 0). The paper gives no values for alpha, beta, gamma or
# T: T = 0.5 is FGD's; alpha, beta, gamma are ours (untuned; alpha:beta = 2:1
# as FGD), see configs/ld_wsccd/README.md.
ld_wsccd = dict(
    type='FGDLoss',
    temp=0.5,
    alpha_fgd=4e-6,
    beta_fgd=2e-6,
    gamma_fgd=1.0,
    lambda_fgd=0.,
    scale_mask=False,
    attention_reduction='mean')
