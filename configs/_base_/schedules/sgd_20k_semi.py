# The optimiser of Chai et al. (ISBI 2022): SGD lr 0.005, momentum 0.9, step
# decay. The length (20k iterations, /10 at 14k and 18k) and the 500-iteration
# warm-up are ours (the paper does not give them).
max_iters = 20000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[14000, 18000], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
