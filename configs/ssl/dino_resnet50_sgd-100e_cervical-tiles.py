# DINO pre-training of a ResNet-50 on unlabeled cervical cytology tiles
# (Stegmueller et al., ISBI 2023; DINO of Caron et al., ICCV 2021) with the
# official DINO ResNet-50 recipe (facebookresearch/dino, args of the released
# dino_resnet50 run): SGD lr 0.03 per 256 images (linear warm-up 10 epochs,
# cosine to 1e-6), momentum 0.9, weight decay 1e-4 constant (1e-4 -> 1e-4),
# gradient clipping 3.0, 100 epochs, batch 64 per GPU x 8, teacher momentum
# 0.996 -> 1 (cosine, every iteration), teacher temperature 0.04 (no warm-up in
# that run), student temperature 0.1, centre momentum 0.9, out_dim 65536, no
# BN in the head, weight-normalised last layer with a fixed norm, frozen for
# the first epoch; global crops (0.14, 1), local crops (0.05, 0.14), here off
# (two views, see _base_/cervical_tiles_dino.py).
# The official run used fp16 and SyncBN on 8 GPUs: on GPUs add
# ``optim_wrapper = dict(type='AmpOptimWrapper')`` and ``sync_bn = 'torch'``.
#   bash tools/dist_train.sh configs/ssl/dino_resnet50_sgd-100e_cervical-tiles.py 8
# Transfer: tools/ssl/convert_backbone.py writes the teacher backbone for
# ``backbone.init_cfg`` of the detectors / the PCN.
_base_ = ['./_base_/cervical_tiles_dino.py', './_base_/dino_runtime.py']

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

batch_size = 64  # per GPU; 8 GPUs
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(pipeline={{_base_.train_pipeline_resnet_224}}))

max_epochs = 100
warmup_epochs = 10
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='SGD', lr=0.03 * batch_size * 8 / 256, momentum=0.9,
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
auto_scale_lr = dict(base_batch_size=batch_size * 8)
