# LD-WSCCD Table 4 row "SSD" (Yin et al., IEEE Access 2024) in the CPU size
# of ./ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py: the plain
# SSD of its student (half-width ResNet-18, Eq. (4) priors, MultiBox loss
# Eq. (5)-(7): loss_cls = L_conf, loss_bbox = L_loc), no MIL detector, no
# distillation. Same data, schedule and batch as the other CPU rows; its
# detections are the SSD's own.
_base_ = './ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py'
model = dict(_base_.cpu_ssd, _delete_=True)
custom_hooks = []
