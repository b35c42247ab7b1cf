# The LD-WSCCD student (Yin et al., IEEE Access 2024, our reading: see
# configs/ld_wsccd/README.md): a weakly supervised OICR detector on SSD512
# (VGG16) features. SSDVGG gives conv4_3 (512 ch, stride 8) and fc7 (1024 ch,
# stride 16); SSDNeck L2-normalises conv4_3 and adds SSD512's first three
# extra levels (512, 256, 256 ch at strides 32, 64, 128), i.e. SSD512's levels
# 0-4, the ones a RetinaNet teacher's P3-P7 match. The OICR head pools RoIs
# on level 1 (fc7, `feat_levels=(1, )`), as ./oicr_vgg16.py does. Levels 0
# and 2-4 feed only the FGD distillation (the MIL head does not read them);
# SSD512's levels 5-6 (strides 256, 512) have neither a teacher level nor a
# head here and are left out.
_base_ = './oicr_vgg16.py'
model = dict(
    neck=dict(
        type='SSDNeck',
        in_channels=(512, 1024),
        out_channels=(512, 1024, 512, 256, 256),
        level_strides=(2, 2, 2),
        level_paddings=(1, 1, 1),
        l2_norm_scale=20),
    feat_levels=(1, ))
