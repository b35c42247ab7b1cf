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
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_120e_ld-wsccd.py'
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

# schedule: ../_base_/schedules/adam_120e_ld-wsccd.py (the LD-WSCCD setting)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
# Without distillation the SSD extra levels (2-4) get no gradient: they are
# kept so that this student and the distilled one share one architecture
# (checkpoints load both ways); DDP must tolerate the unused parameters.
find_unused_parameters = True
