# CPU-sized DINO for the tests and the CPU measurements (not a paper
# setting): a half-width ResNet-18 (stem and base 32 channels, 256-d
# feature, as the CPU PCN) from scratch, two 96x96 global views, out_dim 4096
# (ours: 65536 prototypes are far more than a few thousand tiles need, and
# the 256x65536 last layer would dominate CPU time), a 512-wide head, SGD
# with lr 0.03 at batch 32 (the ResNet-50 recipe's lr per 256 images was
# slower to move off the uniform teacher on a CPU budget), weight decay
# 1e-4, teacher temperature 0.04, 10 epochs (about 440 iterations on the
# 1.4k tiles of configs/ssl/README.md), k-NN on Herlev at 96 px every
# 5 epochs.
#   python tools/train.py configs/ssl/dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py
_base_ = ['./dino_resnet50_sgd-300e_cervical-tiles.py']

# the ResNet-50 recipe's model, data and runtime, CPU-sized:
out_channels = 4096
model = dict(
    backbone=dict(depth=18, stem_channels=32, base_channels=32),
    head=dict(
        in_channels=256, out_channels=out_channels, hidden_channels=512,
        bottleneck_channels=128),
    loss=dict(out_channels=out_channels))

batch_size = 32
train_dataloader = dict(
    batch_size=batch_size, num_workers=2, persistent_workers=True,
    dataset=dict(pipeline={{_base_.train_pipeline_cpu_96}}))
val_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=False,
    dataset=dict(pipeline={{_base_.knn_pipeline_96}}))
test_dataloader = val_dataloader

max_epochs = 10
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=0.03))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=5))
