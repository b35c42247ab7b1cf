# Runtime of the DINO pre-training configs (configs/ssl/): the shared
# mmpretrain-scope runtime with DINO's frozen last layer.
_base_ = ['../../_base_/mmpretrain_runtime.py']
default_hooks = dict(
    # loss_dino, teacher_entropy (log K = uniform collapse, 0 = one-hot
    # collapse), center_norm, teacher_temp, momentum, lr are logged.
    checkpoint=dict(interval=10, max_keep_ckpts=2))
# DINO --freeze_last_layer 1: the head's last layer is not updated during the
# first epoch (gradients dropped right before each optimizer step).
custom_hooks = [dict(type='DINOFreezeLastLayerHook', freeze_epochs=1)]
log_processor = dict(window_size=10)
