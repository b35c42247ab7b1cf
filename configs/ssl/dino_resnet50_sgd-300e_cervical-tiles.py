# DINO pre-training of a ResNet-50 on unlabeled cervical cytology tiles as
# Stegmueller et al. (ISBI 2023) Sec. 3.1: "the recommended parameters
# available on the official repository ... only differ from the
# recommendations for the batch size and the number of local crops":
# batch_size = 256 (ResNet50), no local crops, 300 epochs.
# The recommendations (facebookresearch/dino README, ResNet-50 command, and
# main_dino.py defaults for the rest): SGD lr 0.03 per 256 images (linear
# warm-up 10 epochs, cosine to 1e-6), momentum 0.9, weight decay 1e-4
# constant (1e-4 -> 1e-4), gradient clipping 3.0, teacher momentum 0.996 -> 1
# (cosine, every iteration), teacher temperature 0.04 (no warm-up), student
# temperature 0.1, centre momentum 0.9, out_dim 65536, no BN in the head,
# weight-normalised last layer with a fixed norm, frozen for the first epoch;
# global crops 224 px at (0.14, 1) (also main_dino.py's advice without local
# crops), local crops off (the paper: "ambiguous positive pairs for
# non-object-centric datasets").
# Ours: batch 256 = 8 GPUs x 32 (the paper gives the total only; with N GPUs
# set train_dataloader.batch_size=256/N, lr follows auto_scale_lr). The
# official run used fp16 and SyncBN: on GPUs add
# ``optim_wrapper = dict(type='AmpOptimWrapper')`` and ``sync_bn = 'torch'``.
# main_dino.py's help advises teacher momentum 0.9995 "with batch size of
# 256"; the paper keeps every argument but batch and local crops, so 0.996
# stays (set model.base_momentum=0.9995 to follow the help text).
#   bash tools/dist_train.sh configs/ssl/dino_resnet50_sgd-300e_cervical-tiles.py 8
# Transfer: tools/ssl/convert_backbone.py writes the teacher backbone for
# ``backbone.init_cfg`` of the detectors / the PCN.
_base_ = [
    './_base_/cervical_tiles_dino.py', '../_base_/mmpretrain_runtime.py'
]

out_channels = 65536
model = dict(
    type='DINOPretrain',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='ResNet', depth=50, out_indices=(3, ), style='pytorch',
        zero_init_residual=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='DINOProjectionHead',
        in_channels=2048,
        out_channels=out_channels,
        hidden_channels=2048,
        bottleneck_channels=256,
        num_layers=3,
        use_bn=False,
        norm_last_layer=True),
    loss=dict(
        type='DINOLoss',
        out_channels=out_channels,
        student_temp=0.1,
        warmup_teacher_temp=0.04,
        teacher_temp=0.04,
        warmup_teacher_temp_epochs=0,
        center_momentum=0.9),
    num_global_crops=2,
    base_momentum=0.996,
    final_momentum=1.0)

num_gpus = 8
batch_size = 32  # per GPU: 8 x 32 = 256 (Sec. 3.1)
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(pipeline={{_base_.train_pipeline_resnet_224}}))

max_epochs = 300  # Sec. 3.1
warmup_epochs = 10
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=0.03 * batch_size * num_gpus / 256, momentum=0.9,
        weight_decay=1e-4),
    # DINO does not decay biases and norm (1-d) parameters
    paramwise_cfg=dict(
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.),
    clip_grad=dict(max_norm=3.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size * num_gpus)

# Runtime: the shared mmpretrain-scope runtime with DINO's frozen last layer.
default_hooks = dict(
    # loss_dino, teacher_entropy (log K = uniform collapse, 0 = one-hot
    # collapse), center_norm, teacher_temp, momentum, lr are logged.
    checkpoint=dict(interval=10, max_keep_ckpts=2))
# DINO --freeze_last_layer 1: the head's last layer is not updated during the
# first epoch (gradients dropped right before each optimizer step).
custom_hooks = [dict(type='DINOFreezeLastLayerHook', freeze_epochs=1)]
log_processor = dict(window_size=10)
