# CPU size of ./att-blstm_r50_sgd-90e_cervical-roi-1024.py (Table 1
# baseline: Att-BLSTM alone). Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
model = dict(local_branch=None, cross_attention=None, cell_branches=None)
