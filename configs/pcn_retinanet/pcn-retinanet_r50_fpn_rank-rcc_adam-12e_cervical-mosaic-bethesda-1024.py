# Stage 3 of Fei et al. (MICCAI 2023): fine-tune the stage-1 RetinaNet R50-FPN
# with the frozen stage-2 PCN (SE-ResNeXt-50 32x4d), ranking loss (alpha 0.25,
# margin 0.05) and ROI-correlation consistency loss (beta 1.0), K = 10 boxes
# per image, Adam 4e-5. Table 2 row "+both". Inference needs nothing of this:
# its checkpoints load into the plain RetinaNet config.
_base_ = [
    './retinanet_r50_fpn_ft-adam-12e_cervical-mosaic-bethesda-1024.py',
    './_base_/pcn_seresnext50-32x4d.py', './_base_/pcn_rank-rcc.py'
]
# the shared stage-3 settings (./_base_/pcn_rank-rcc.py: s_c = 1 - p(normal),
# local-scale feature = PCN stage 1, 256 x 56 x 56 at 224 px; the losses;
# top-K boxes) + this config's PCN, ROI features and patch geometry
model = dict(
    _base_.pcn_rank_rcc,
    # The stage-2 network (same dict as configs/pcn_retinanet/) and its checkpoint.
    pcn=_base_.pcn_model,
    pcn_checkpoint='work_dirs/pcn_seresnext50-32x4d_gap_adam-30e_cervical-patches-bethesda-1024/epoch_30.pth',  # noqa: E501
    # ROI features: 7x7 RoIAlign on the FPN, level by box scale.
    roi_extractor=dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=256,
        featmap_strides=[8, 16, 32, 64]),
    # PCN patches: the box x1.5, square, resized to 224; must match
    # build_pcn_patches.py (--patch-scale 1.5 --square --patch-size 224).
    patch_cfg=dict(size=224, scale=1.5, square=True, min_size=0))
