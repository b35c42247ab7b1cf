# cervdet's own CPU starting point for the CRIC detectors: the CPU DINO
# (half-width ResNet-18, 96 px views; dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py)
# on 128 px tiles of the real CRIC training and validation fields (labels
# unused; test fields never seen), 6 epochs (~410 iterations of 32 tiles).
# Not a paper setting (Stegmueller et al. pre-train 300 epochs on GPUs).
# Made and converted by tools/cric_dino_init.sh into
# data/pretrained/dino_r18-w32_cric-tiles.pth, which the *_dino-init_*
# detector configs load.
_base_ = ['./dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py']
train_dataloader = dict(dataset=dict(data_root='data/cric-tiles/'))
max_epochs = 6
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
