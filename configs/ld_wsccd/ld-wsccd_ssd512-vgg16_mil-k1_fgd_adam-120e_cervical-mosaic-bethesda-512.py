# LD-WSCCD ablation "SSD+LDM": the "SSD" detector (one refinement stage,
# K = 1) with the local FGD distillation of the full model (same teacher,
# feature pairs, teacher-box masks and schedule). Its student-only
# checkpoints load into ./ld-wsccd_ssd512-vgg16_mil-k1_adam-120e_...
# See ./README.md.
_base_ = './ld-wsccd_ssd512-vgg16_mil-k3_fgd_adam-120e_cervical-mosaic-bethesda-512.py'
model = dict(student=dict(roi_head=dict(num_refine_stages=1)))
