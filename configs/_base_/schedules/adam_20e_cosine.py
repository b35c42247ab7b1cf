# The schedule of the CPU detectors trained from scratch (RetinaNet on the
# mosaics and the CRIC fields, the CPU FGD / LD-WSCCD teachers): Adam lr 1e-3
# (from scratch Adam needs a larger step than the paper's fine-tuning 4e-5),
# weight decay 1e-4, gradient clipping, 50 iterations of linear warm-up, then
# cosine to 5 % over max_epochs, validation every 5 epochs. A config of
# another length sets max_epochs, train_cfg and param_scheduler again. Not a
# paper setting.
max_epochs = 20
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.05)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)
