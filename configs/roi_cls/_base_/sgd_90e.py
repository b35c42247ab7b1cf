# The ROI classifier's optimiser of Shi et al. (ISBI 2022): SGD lr 3e-4
# (momentum 0.9 and weight decay 1e-4 are ours), /10 every 30 epochs,
# 90 epochs.
max_epochs = 90
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=3e-4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='StepLR', by_epoch=True, step_size=30, gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=4)
