# LD-WSCCD Table 4 row "SSD+LDM" (Yin et al., IEEE Access 2024) in the CPU
# size of ./ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py: the
# CPU "SSD" row's detector (./ld-wsccd_r18-w32_ssd_adam-24e_1xb4_cric-cervix-
# 384.py) trained with the local distillation mechanism of Eq. (9)-(14)
# (the ld_wsccd preset) from the same CPU teacher as the full row. No MIL
# detector, so the mask M of Eq. (9) is the ground-truth boxes alone
# (fg_boxes='gt'). Train the teacher first (./README.md).
_base_ = './ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py'
model = dict(student=dict(_base_.cpu_ssd, _delete_=True), fg_boxes='gt')
