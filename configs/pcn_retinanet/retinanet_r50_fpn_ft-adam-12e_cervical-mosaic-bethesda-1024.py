# Ablation baseline of Fei et al. (MICCAI 2023), Table 2 row "RetinaNet": the
# stage-1 RetinaNet R50-FPN fine-tuned for the stage-3 schedule *without* the
# PCN, so that the +rank / +RCC / +both rows differ from it only in the
# distillation losses. Also the schedule shared by all stage-3 configs.
_base_ = [
    '../retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py'
]
# Every weight comes from the stage-1 checkpoint (nothing is downloaded).
model = dict(backbone=dict(init_cfg=None))
load_from = 'work_dirs/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024/epoch_24.pth'  # noqa: E501

# Stage 3: Adam 4e-5 (the paper's; inherited optim_wrapper), 12 epochs, /10
# at epochs 8 and 11 (our choice: the paper gives no stage-3 length).
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
