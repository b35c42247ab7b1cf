# ./att-mil_r18-w32_adamw-20e_1xb4_cervical-roi-512.py (CLAM-style attention MIL,
# the Table 1 baseline at CPU size) on the Herlev ROI set of
# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_herlev-roi-512.py (same
# DINO feature cache: extract it once with either config). Not a paper
# setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(
    global_branch=dict(
        _delete_=True, type='GatedAttentionMIL',
        in_channels=_base_.cpu_feat_channels, hidden_channels=128,
        attn_channels=64, gated=True),
    local_branch=None, cross_attention=None,
    cell_branches=dict(rule='clam'))
train_dataloader = dict(dataset=_base_.cpu_herlev_data)
val_dataloader = dict(dataset=_base_.cpu_herlev_data)
test_dataloader = dict(dataset=_base_.cpu_herlev_data)
