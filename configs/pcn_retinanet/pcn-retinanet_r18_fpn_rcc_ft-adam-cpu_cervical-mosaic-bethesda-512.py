# CPU ablation: stage 3 with the RCC loss only.
_base_ = [
    './pcn-retinanet_r18_fpn_rank-rcc_ft-adam-cpu_cervical-mosaic-bethesda-512.py'
]
model = dict(loss_rank=None)
