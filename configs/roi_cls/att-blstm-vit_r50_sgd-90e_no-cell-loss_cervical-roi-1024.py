# Table 1 baseline (Shi et al.): Att-BLSTM + ViT with cross attention,
# without the weakly supervised cell branches (L = L_ROI).
_base_ = ['./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py']
model = dict(cell_branches=None)
