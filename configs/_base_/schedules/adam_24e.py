# Adam, lr 4e-5 (Fei et al.), 24 epochs, linear warm-up, /10 at epochs 16, 22.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(
        type='MultiStepLR',
        begin=0,
        end=24,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=4e-5, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
# lr 4e-5 was set for batch 2 x 1 GPU; --auto-scale-lr scales it linearly.
auto_scale_lr = dict(enable=False, base_batch_size=2)
