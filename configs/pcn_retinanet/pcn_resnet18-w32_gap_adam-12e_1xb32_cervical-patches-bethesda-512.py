# CPU-sized stage 2: a half-width ResNet-18 PCN from scratch on 64x64 patches
# of the 512 mosaic set, for the tests and the CPU ablation
# (configs/pcn_retinanet/README.md). Not a paper setting: the paper's PCN is
# pcn_seresnext50-32x4d_gap_adam-30e_cervical-patches-bethesda-1024.py.
# Data:
#   python tools/dataset_converters/build_pcn_patches.py \
#       --coco-root data/cervical-mosaic-bethesda-512 \
#       --out-dir data/cervical-pcn-patches-bethesda-512 --patch-size 64
_base_ = [
    './_base_/pcn_resnet18-w32.py', './_base_/cervical_patches_1024.py',
    './_base_/pcn_runtime.py'
]
model = {{_base_.pcn_model}}
data_root = 'data/cervical-pcn-patches-bethesda-512/'
train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))

max_epochs = 12
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=4)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.01)
]
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10))
