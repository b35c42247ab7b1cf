# LD-WSCCD ablation "SSD+MIL" (Yin et al., IEEE Access 2024): the MIL
# detector with K = 3 OICR refinement stages on SSD512 (VGG16) features,
# trained from image-level labels, without distillation (L_cls + L_ref).
# The paper setting: 512x512 input, Adam lr 1e-4, weight decay 5e-4, batch
# 10, 120 epochs. Also the plain student of the full model
# (./ld-wsccd_ssd512-vgg16_mil-k3_fgd_adam-120e_...): its student-only
# checkpoints load into this config. See ./README.md.
_base_ = [
    '../_base_/models/oicr_ssd512_vgg16.py',
    '../_base_/datasets/cervical_mosaic_bethesda_512_weak.py',
    '../_base_/default_runtime.py'
]
model = dict(roi_head=dict(num_refine_stages=3))

# The weak 512 pipeline with flips both ways (cells have no orientation).
_flip = dict(
    type='RandomFlip',
    prob=[0.25, 0.25, 0.25],
    direction=['horizontal', 'vertical', 'diagonal'])
train_pipeline = [
    dict(t, transforms=[
        _flip if s['type'] == 'RandomFlip' else s for s in t['transforms']
    ]) if t['type'] == 'ProposalBroadcaster' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(
    batch_size=10, num_workers=4, dataset=dict(pipeline=train_pipeline))

max_epochs = 120
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[80, 110],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=5e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=10)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
# Without distillation the SSD extra levels (2-4) get no gradient: they are
# kept so that this student and the distilled one share one architecture
# (checkpoints load both ways); DDP must tolerate the unused parameters.
find_unused_parameters = True
