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
