# Table 1 baseline (Shi et al.): the global branch alone (Att-BLSTM over the
# pooled cell features; no ViT, no cross attention, no cell branches).
_base_ = ['./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py']
model = dict(local_branch=None, cross_attention=None, cell_branches=None)
