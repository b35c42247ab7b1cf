# Stage 2 of the warm-started CPU recipe: the CPU dual-alignment model
# initialised from the supervised burn-in
# (./faster-rcnn_r18-w32_fpn_sgd-burnin-800it_1xb2_sup-25_..., last checkpoint), so that
# its own predictions pass the 0.5 pseudo-label threshold from the first
# step, then 300 semi-supervised iterations at the paper's lr 0.005
# (constant). Its supervised counterpart at equal CPU time is
# ./faster-rcnn_r18-w32_fpn_sgd-warm-500it_1xb2_sup-25_.... Not a paper setting.
_base_ = ['./dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_cervical-mosaic-bethesda-512.py']
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
