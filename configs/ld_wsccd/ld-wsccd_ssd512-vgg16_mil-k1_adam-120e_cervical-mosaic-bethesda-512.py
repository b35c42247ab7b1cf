# LD-WSCCD ablation "SSD": the SSD512 (VGG16) feature MIL detector with a
# single refinement stage (K = 1), the closest to a plain MIL baseline that
# OICRHead allows (its detection scores come from the refinement stages, so
# K >= 1). No distillation. Otherwise ./ld-wsccd_ssd512-vgg16_mil-k3_adam-
# 120e_...: same data, schedule and student; the plain student of the
# "SSD+LDM" config. See ./README.md.
_base_ = './ld-wsccd_ssd512-vgg16_mil-k3_adam-120e_cervical-mosaic-bethesda-512.py'
model = dict(roi_head=dict(num_refine_stages=1))
