# Runtime shared by cervdet's mmpretrain-scope configs (the PCN of
# configs/pcn_retinanet/, the ROI classifier of configs/roi_cls/, DINO of
# configs/ssl/): mmpretrain scope, cervdet registered, device-agnostic
# distributed training (CervdetRunner: nccl on GPUs, gloo on CPUs) as for
# the detectors. Each method's runtime overrides its checkpoint and logger.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['cervdet'], allow_failed_imports=False)
runner_type = 'CervdetRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend=None))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
