# Runtime of the ROI classifier configs (Shi et al., ISBI 2022): the shared
# mmpretrain-scope runtime, keeping the checkpoint with the best ROI
# accuracy on val.
_base_ = ['../../_base_/mmpretrain_runtime.py']
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=10, max_keep_ckpts=2, save_best='roi/accuracy',
        rule='greater'))
