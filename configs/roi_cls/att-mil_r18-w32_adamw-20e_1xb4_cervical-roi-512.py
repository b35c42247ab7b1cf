# CPU size of ./att-mil_r50_sgd-90e_cervical-roi-1024.py (Table 1 baseline:
# CLAM-style attention MIL with CLAM's instance branches). Not a paper
# setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
model = dict(
    global_branch=dict(
        _delete_=True, type='GatedAttentionMIL',
        in_channels=_base_.cpu_feat_channels, hidden_channels=128,
        attn_channels=64, gated=True),
    local_branch=None, cross_attention=None,
    cell_branches=dict(rule='clam'))
