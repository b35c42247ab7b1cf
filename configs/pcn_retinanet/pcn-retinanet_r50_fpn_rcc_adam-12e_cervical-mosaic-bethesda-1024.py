# Ablation (Table 2 of Fei et al.): stage 3 with the RCC loss only.
_base_ = [
    './pcn-retinanet_r50_fpn_rank-rcc_adam-12e_cervical-mosaic-bethesda-1024.py'
]
model = dict(loss_rank=None)
