# Runtime of the slide-call configs: the shared mmpretrain-scope runtime
# (default_scope='mmpretrain', cervdet imported), keeping the checkpoint
# with the best slide AUC on val.
_base_ = ['../../_base_/mmpretrain_runtime.py']
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=1, max_keep_ckpts=2, save_best='slide/auc', rule='greater'))
