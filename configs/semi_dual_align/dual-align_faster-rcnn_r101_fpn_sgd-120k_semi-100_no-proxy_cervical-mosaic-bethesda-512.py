# Table 2 ablation "Ours (w/o proposal alignment)" of Chai et al. (Sec. 3.4):
# all labeled and unlabeled data, prototype alignment only (no proxies).
_base_ = ['./dual-align_faster-rcnn_r101_fpn_sgd-120k_semi-100_cervical-mosaic-bethesda-512.py']
model = dict(with_proxy=False, with_prototype=True)
