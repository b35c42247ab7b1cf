# CPU-sized ablation baseline: the CPU stage-1 RetinaNet (half-width R18,
# 512 mosaics read at 384) fine-tuned for the CPU stage-3 schedule without the
# PCN. With the three pcn-retinanet_r18_* configs it forms the CPU ablation of
# configs/pcn_retinanet/README.md. Not a paper setting.
_base_ = [
    '../retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
]
load_from = 'work_dirs/retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512/epoch_20.pth'  # noqa: E501

# Fine-tuning: constant Adam 1e-4 for 6 epochs (stage 1 ends at 5e-5 after its
# cosine decay from 1e-3).
max_epochs = 6
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=100)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=1e-4))
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
