# Runtime of the PCN (stage 2) configs: the shared mmpretrain-scope runtime,
# keeping the checkpoint with the best abnormal-vs-normal ROC-AUC.
_base_ = ['../../_base_/mmpretrain_runtime.py']
default_hooks = dict(
    checkpoint=dict(
        interval=1, max_keep_ckpts=2, save_best='pcn/roc_auc',
        rule='greater'))
