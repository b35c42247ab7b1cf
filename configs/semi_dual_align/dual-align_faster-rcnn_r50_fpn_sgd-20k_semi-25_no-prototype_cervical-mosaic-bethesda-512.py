# Ablation: proxy alignment only (no prototype memory bank).
_base_ = ['./dual-align_faster-rcnn_r50_fpn_sgd-20k_semi-25_cervical-mosaic-bethesda-512.py']
model = dict(with_proxy=True, with_prototype=False)
