# The global-local attention network of Shi et al. (ISBI 2022) at the
# paper's size (section numbers of the paper; README table "paper says /
# cervdet does / where"): ResNet-50 cell features of 224 px cells (2048-d
# pooled, 2048x7x7 stage-4 maps, Sec. 2.2-2.3, 3), Att-BLSTM with the
# peephole LSTM of Eq. 1 (2 x 512 -> h_ROI 1024-d, Sec. 2.2, 2.4), the
# hybrid ViT-B on each cell's map (1x1 patches, class token, D = 768,
# 12 layers / 12 heads = ViT-B, pre-trained on ImageNet-21k, Sec. 2.3), cross attention d_k = d_v = 1024 without
# biases (Eq. 7), C = 3 binary cell branches on the ViT features y_i with
# the sample rules 1-3 of Sec. 2.4 (N = 10 % of the cells, rule='shi'),
# L_cell = (L_NILM + L_LSIL + L_HSIL) / 3, lambda = 0.25 (Sec. 3).
#
# local_branch.init_cfg downloads mmpretrain's ImageNet-21k ViT-B/16 (the
# transformer; the 1x1 patch embedding of the 2048-channel maps has no
# pre-trained counterpart and stays random, cervdet/models/layers/
# cell_vit.py). Offline: download the file once and set
#   --cfg-options model.local_branch.init_cfg.checkpoint=/path/vit-b16.pth
# (timm's hybrid vit_base_r50_s16_224.orig_in21k works too, with
# model.local_branch.init_cfg.prefix=''), or init_cfg=None for random.
#
# cell_encoder: the CNN of the feature cache (tools/roi_cls/
# extract_cell_features.py) and of pixel-mode inference
# (tools/roi_cls/infer_rois.py). Nothing is downloaded at run time: give
# ImageNet (or DINO, tools/ssl/convert_backbone.py) weights as a local file
# with --checkpoint, or set init_cfg=dict(type='Pretrained', checkpoint=...).
cell_encoder = dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch')
# mmpretrain's ImageNet-21k ViT-B/16 (= cervdet.models.layers.cell_vit.
# VIT_B16_IN21K_URL), as in mmpretrain's vision_transformer configs
vit_in21k = ('https://download.openmmlab.com/mmclassification/v0/vit/'
             'pretrain/vit-base-p16_3rdparty_pt-64xb64_in1k-224_'
             '20210928-02284250.pth')
model = dict(
    type='GlobalLocalROIClassifier',
    data_preprocessor=dict(
        type='ROIBagDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    global_branch=dict(
        type='AttBLSTM', in_channels=2048, hidden_size=512, peephole=True),
    local_branch=dict(
        type='CellViT', in_channels=2048, embed_dims=768, depth=12,
        num_heads=12, map_size=7,
        init_cfg=dict(
            type='Pretrained', checkpoint=vit_in21k, prefix='backbone.')),
    cross_attention=dict(type='ROICrossAttention', d_k=1024, qkv_bias=False),
    num_classes=3,
    class_names=['NILM', 'LSIL', 'HSIL'],
    cell_branches=dict(
        ratio=0.1, rule='shi', loss_weight=0.25, branch_average='all'),
    loss_roi=dict(type='CrossEntropyLoss', loss_weight=1.0))
