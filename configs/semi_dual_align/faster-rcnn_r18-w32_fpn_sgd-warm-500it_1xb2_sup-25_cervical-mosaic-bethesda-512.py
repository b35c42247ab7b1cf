# Stage 2, supervised side of the warm-started CPU comparison: the burn-in
# model (./faster-rcnn_r18-w32_fpn_sgd-burnin-800it_1xb2_sup-25_..., last checkpoint)
# trained on, labeled images only, at lr 0.005 (constant) for 500
# iterations, meant as the CPU time of the 300 semi-supervised iterations of
# ./dual-align_faster-rcnn_r18-w32_fpn_sgd-warm-300it_1xb4_semi-25_... (set warm_iters
# from the step-cost ratio benchmarks/bench_dual_align.py measures on your
# machine); its iteration-300 checkpoint is the equal-iteration point. Not a
# paper setting.
_base_ = ['./faster-rcnn_r18-w32_fpn_sgd-300it_1xb2_sup-25_cervical-mosaic-bethesda-512.py']
burnin_checkpoint = 'work_dirs/semi_warm_burnin/iter_800.pth'
warm_iters = 500
model = dict(init_cfg=dict(type='Pretrained', checkpoint=burnin_checkpoint))
train_cfg = dict(max_iters=warm_iters, val_interval=100)
# keep every 100-iteration checkpoint (iteration 300 = equal iterations)
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=5))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
         end=warm_iters)
]
