# LD-WSCCD Table 4 row "SSD+MIL detector" (Yin et al., IEEE Access 2024) in
# the CPU size of ./ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py:
# its student alone (half-width ResNet-18 SSD, Eq. (4) priors, MultiBox loss
# Eq. (5)-(7), the MIL detector on the fused multi-scale features, Eq. (15)-
# (16)), no distillation: loss_conf + loss_loc + loss_mil + loss_ref1..3.
# Same data, schedule and batch as the full CPU row (the CPU departures are
# listed there and in ./README.md).
_base_ = './ld-wsccd_r18-w32_ssd-ldm-mil_adam-24e_1xb4_cric-cervix-384.py'
model = dict(_base_.student, _delete_=True)
custom_hooks = []
