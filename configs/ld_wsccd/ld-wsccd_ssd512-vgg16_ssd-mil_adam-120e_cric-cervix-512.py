# LD-WSCCD Table 4 row "SSD+MIL detector" (Yin et al., IEEE Access 2024):
# SSD512 (VGG16, prior boxes of Eq. (4) with S_min 0.2 / S_max 0.9, MultiBox
# loss Eq. (5)-(7)) + the MIL detector on the fused multi-scale features
# (Sec. III.D, Eq. (15)-(16), K = 3, top-1 pseudo labels), no distillation:
# loss_conf + loss_loc + loss_mil + loss_ref1..3. Real CRIC fields at
# 512x512; the paper setting: Adam lr 1e-4, weight decay 5e-4, batch 10, 120
# epochs (Sec. III.B; the optimizer is not named there, see the schedule).
# Also the plain student of the full model (./ld-wsccd_ssd512-vgg16_ssd-ldm-
# mil_...): its student-only checkpoints load here. See ./README.md.
_base_ = [
    '../_base_/models/ld_wsccd_ssd512_vgg16.py',
    '../_base_/datasets/cric_cervix_weak_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adam_120e_ld-wsccd.py'
]
train_dataloader = dict(batch_size=10, num_workers=4)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
