# ./att-blstm_r18-w32_adamw-20e_1xb4_cervical-roi-512.py
# (Att-BLSTM alone (Table 1 baseline), CPU size) on the Herlev ROI set of
# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_herlev-roi-512.py (same
# DINO feature cache: extract it once with any of these configs). Not a
# paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(local_branch=None, cross_attention=None, cell_branches=None)
train_dataloader = dict(dataset=_base_.cpu_herlev_data)
val_dataloader = dict(dataset=_base_.cpu_herlev_data)
test_dataloader = dict(dataset=_base_.cpu_herlev_data)
