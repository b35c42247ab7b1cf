# CPU-sized DINO ViT for the tests and the CPU measurements (not a paper
# setting): a ViT-Tiny/16 (mmpretrain 'deit-tiny': 192-d, 12 layers) from
# scratch on two 96x96 global views (6x6 patches), out_dim 4096 (ours), a
# 512-wide head with a weight-norm-fixed last layer (stabler for a short
# run), AdamW with the ViT recipe scaled to batch 32 (lr 5e-4 per 256 images,
# weight decay cosine 0.04 -> 0.4), teacher temperature 0.04 -> 0.07 over 5
# epochs, 30 epochs, k-NN on Herlev at 96 px every 5 epochs. Same data and
# runtime as dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py.
#   python tools/train.py configs/ssl/dino_vit-tiny-p16_adamw-30e_1xb32_cervical-tiles.py
_base_ = ['./dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py']

out_channels = 4096
model = dict(
    backbone=dict(
        _delete_=True, type='VisionTransformer', arch='deit-tiny',
        patch_size=16, img_size=96, drop_path_rate=0.1,
        out_type='cls_token'),
    neck=None,
    head=dict(in_channels=192),
    loss=dict(teacher_temp=0.07, warmup_teacher_temp_epochs=5))

batch_size = 32
max_epochs = 30
warmup_epochs = 2
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=5e-4 * batch_size / 256,
        weight_decay=0.04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10., T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
