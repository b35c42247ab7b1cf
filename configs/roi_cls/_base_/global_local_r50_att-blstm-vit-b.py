# The global-local attention network of Shi et al. (ISBI 2022) at the
# paper's size: ResNet-50 cell features (2048-d pooled, 2048x7x7 stage-4
# maps of 224 px crops), Att-BLSTM (2 x 512 -> h_ROI 1024-d), a hybrid ViT
# on each cell's map (1x1 patches, class token, D = 768; depth 12 and 12
# heads are ours: the paper's depth was not readable here), cross attention
# d_k = d_v = 1024, C binary cell branches on y_i (N = 10 % of the cells,
# our reading of the NILM / LSIL / HSIL sample rules, weight 0.25).
#
# cell_encoder: the CNN of the feature cache (tools/roi_cls/
# extract_cell_features.py) and of pixel-mode inference
# (tools/roi_cls/infer_rois.py). Nothing is downloaded at run time: give
# ImageNet (or DINO, tools/ssl/convert_backbone.py) weights as a local file
# with --checkpoint, or set init_cfg=dict(type='Pretrained', checkpoint=...).
cell_encoder = dict(type='ResNet', depth=50, out_indices=(3, ), style='pytorch')
model = dict(
    type='GlobalLocalROIClassifier',
    data_preprocessor=dict(
        type='ROIBagDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    global_branch=dict(type='AttBLSTM', in_channels=2048, hidden_size=512),
    local_branch=dict(
        type='CellViT', in_channels=2048, embed_dims=768, depth=12,
        num_heads=12, map_size=7),
    cross_attention=dict(type='ROICrossAttention', d_k=1024),
    num_classes=3,
    class_names=['NILM', 'LSIL', 'HSIL'],
    cell_branches=dict(ratio=0.1, rule='bethesda', loss_weight=0.25),
    loss_roi=dict(type='CrossEntropyLoss', loss_weight=1.0))
