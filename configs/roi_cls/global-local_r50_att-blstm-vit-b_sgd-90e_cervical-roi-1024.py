# Shi et al., "Global-local attention network for weakly supervised cervical
# cytology ROI analysis" (ISBI 2022): the full model (Att-BLSTM + ViT + cross
# attention + weakly supervised cell branches, L = L_ROI + 0.25 L_cell) on
# cached ResNet-50 cell features of the 1024 px ROI set, SGD 3e-4, /10 every
# 30 epochs, 90 epochs.
_base_ = [
    './_base_/global_local_r50_att-blstm-vit-b.py',
    './_base_/cervical_roi_1024.py', './_base_/sgd_90e.py',
    '../_base_/mmpretrain_runtime.py'
]

# Runtime: the shared mmpretrain-scope runtime, keeping the checkpoint with
# the best ROI accuracy on val.
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=10, max_keep_ckpts=2, save_best='roi/accuracy',
        rule='greater'))
