# The optimiser of Chai et al. (ISBI 2022), Sec. 2.3: SGD, momentum 0.9,
# initial lr 0.005 "multiplied by 0.1 every 40000 iterations" (StepLR).
# Ours, where the paper gives nothing: the length (120k iterations, i.e. two
# decays, at 40k and 80k), weight decay 1e-4 (mmdet's Faster R-CNN value)
# and no warm-up (the paper names none). The proxies' own lr 0.01 is a
# paramwise group of the dual-alignment configs.
max_iters = 120000
lr_step = 40000
param_scheduler = [
    dict(type='StepLR', step_size=lr_step, gamma=0.1, by_epoch=False,
         begin=0, end=max_iters)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
