# Stage 2 of the warm-started CPU comparison (README "CPU budget, warm
# start"): the CPU dual-alignment model with student and teacher initialised
# from the supervised burn-in
# (./faster-rcnn_r18_fpn_sgd-cpu-burnin_sup-25_..., last checkpoint), then
# 300 semi-supervised iterations at the paper's lr 0.005 (constant). Its
# equal-CPU-budget supervised counterpart is
# ./faster-rcnn_r18_fpn_sgd-cpu-warm_sup-25_... (500 iterations: a semi step
# costs 1.68x a supervised one, benchmarks/bench_dual_align.py).
# Not a paper setting.
_base_ = ['./dual-align_faster-rcnn_r18_fpn_sgd-cpu_semi-25_cervical-mosaic-bethesda-512.py']
burnin_checkpoint = 'work_dirs/semi_warm_burnin/iter_800.pth'
warm_iters = 300
model = dict(
    detector=dict(
        init_cfg=dict(type='Pretrained', checkpoint=burnin_checkpoint)))
train_cfg = dict(max_iters=warm_iters, val_interval=100)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
         end=warm_iters)
]
