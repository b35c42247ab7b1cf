# Table 2 "+Ranking Loss" of the CPU PCN ablation on the CRIC fields.
_base_ = ['./pcn-retinanet_r18-w32_fpn_rank-rcc_ft-adam-cpu_cric-cervix-512.py']
model = dict(loss_rcc=None)
