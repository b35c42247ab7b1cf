# Stage 2 of Fei et al. (MICCAI 2023): train the Patch Correction Network,
# SE-ResNeXt-50 (32x4d) on 224x224 patches (abnormal vs normal, cross-entropy)
# cut from the 1024 mosaic set. Reports top-1 accuracy and ROC-AUC on val.
# The best-ROC-AUC checkpoint is the ``model.pcn_checkpoint`` of stage 3.
# Optimisation as Sec. 3.1: "All parameters are optimized by Adam with an
# initial learning rate of 4e-5" (no weight decay given: Adam's default 0).
# Ours (the paper gives none): 30 epochs, cosine decay of that initial rate
# to 1 %, batch 32, the flips of the patch pipeline.
_base_ = [
    './_base_/pcn_seresnext50-32x4d.py', './_base_/cervical_patches_1024.py',
    './_base_/pcn_runtime.py'
]
model = {{_base_.pcn_model}}

max_epochs = 30
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=4e-5, weight_decay=0.))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.01)
]
auto_scale_lr = dict(base_batch_size=32)
