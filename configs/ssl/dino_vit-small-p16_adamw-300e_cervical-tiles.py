# DINO pre-training of a ViT-S/16 (mmpretrain 'deit-small': 384-d, 12 layers,
# 6 heads) on unlabeled cervical cytology tiles as Stegmueller et al. (ISBI
# 2023) Sec. 3.1: the official recommendations except "batch_size = 192 for a
# ViT-S/16" and no local crops, 300 epochs.
# The recommendations (facebookresearch/dino main_dino.py defaults and the
# README's 300-epoch ViT-S/16 command "--epochs 300 --teacher_temp 0.07
# --warmup_teacher_temp_epochs 30 --norm_last_layer false"): AdamW lr 5e-4
# per 256 images (linear warm-up 10 epochs, cosine to 1e-6), weight decay
# cosine 0.04 -> 0.4, drop path 0.1, gradient clipping 3.0, teacher momentum
# 0.996 -> 1 (cosine, every iteration), student temperature 0.1, teacher
# temperature 0.04 -> 0.07 over the first 30 epochs, centre momentum 0.9,
# out_dim 65536, last layer frozen for the first epoch and not
# weight-norm-fixed. Two global views at (0.14, 1) (main_dino.py's advice
# without local crops); the 8-local-crop pipeline is
# ``train_pipeline_vit_224_local8`` (global (0.4, 1), local (0.05, 0.4)).
# Ours: batch 192 = 8 GPUs x 24 (the paper gives the total only). On GPUs
# add ``optim_wrapper = dict(type='AmpOptimWrapper')`` (fp16 as DINO).
#   bash tools/dist_train.sh \
#       configs/ssl/dino_vit-small-p16_adamw-300e_cervical-tiles.py 8
_base_ = ['./dino_resnet50_sgd-300e_cervical-tiles.py']

# the ResNet-50 recipe's model, data, runtime and schedule lengths, with:
model = dict(
    backbone=dict(
        _delete_=True, type='VisionTransformer', arch='deit-small',
        patch_size=16, img_size=224, drop_path_rate=0.1,
        out_type='cls_token'),
    neck=None,
    head=dict(in_channels=384, norm_last_layer=False),
    loss=dict(teacher_temp=0.07, warmup_teacher_temp_epochs=30))
num_gpus = 8
batch_size = 24  # per GPU: 8 x 24 = 192 (Sec. 3.1)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(pipeline={{_base_.train_pipeline_vit_224}}))

max_epochs = 300  # Sec. 3.1
warmup_epochs = 10
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=5e-4 * batch_size * num_gpus / 256,
        weight_decay=0.04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
    # weight decay 0.04 -> 0.4 (cosine, every iteration); the ratio keeps
    # the non-decayed groups at 0
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
         eta_min_ratio=10., T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size * num_gpus)
