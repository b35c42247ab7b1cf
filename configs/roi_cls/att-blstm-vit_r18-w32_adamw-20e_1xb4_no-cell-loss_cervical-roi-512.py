# CPU size of ./att-blstm-vit_r50_sgd-90e_no-cell-loss_cervical-roi-1024.py
# (Table 1 baseline: no cell branches). Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
model = dict(cell_branches=None)
