# CPU size of ./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py
# for the measurements of README.md: the 512 px CPU ROI set, cached features
# of a half-width ResNet-18 at 64 px (256-d pooled, 256x2x2 maps), Att-BLSTM
# 2 x 128, ViT D 192 depth 2 (random init: no ImageNet weights of this
# width), cross attention d_k 256, annotated cell boxes, the same cell
# branches; AdamW 20 epochs. Not a paper setting.
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
_base_ = [
    './global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py',
    './_base_/cervical_roi_512.py'
]
cell_size = _base_.cpu_cell_size
cell_encoder = _base_.cpu_cell_encoder
model = dict(
    global_branch=dict(in_channels=_base_.cpu_feat_channels, hidden_size=128),
    local_branch=dict(
        in_channels=_base_.cpu_feat_channels, embed_dims=192, depth=2,
        num_heads=3, map_size=2, init_cfg=None),
    cross_attention=dict(d_k=256))
train_dataloader = dict(_base_.cpu_loader, dataset=_base_.cpu_data)
val_dataloader = dict(_base_.cpu_loader, dataset=_base_.cpu_data)
test_dataloader = dict(_base_.cpu_loader, dataset=_base_.cpu_data)
train_cfg = _base_.cpu_train_cfg
optim_wrapper = dict(optimizer=dict(_delete_=True, **_base_.cpu_optimizer))
param_scheduler = _base_.cpu_param_scheduler
auto_scale_lr = dict(base_batch_size=4)
