# The CPU DINO of ./dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py pre-trained
# instead on unlabeled tiles of the CPU ROI set's *training* images (Pap
# cells of the CRIC crops, the domain of the ROI classifier's cells; no
# label is read), 4 epochs. The cell encoder of the configs/roi_cls CPU
# runs (configs/roi_cls/README.md). Not a paper setting.
#   python tools/ssl/extract_tiles.py data/cervical-roi-512/images/train \
#       --out-dir data/cervical-roi-tiles --tile-size 128 --stride 128 \
#       --min-tissue 0.1
_base_ = ['./dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py']
train_dataloader = dict(dataset=dict(data_root='data/cervical-roi-tiles/'))
max_epochs = 4
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=2))
