# ./att-mil_r18-w32_adamw-20e_1xb4_cervical-roi-512.py (CLAM-style attention MIL)
# on the features of the Herlev-pretrained cell encoder, as
# ./global-local_r18-w32-herlev_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py
# (same cache: extract it once with either config). Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(
    global_branch=dict(
        _delete_=True, type='GatedAttentionMIL',
        in_channels=_base_.cpu_feat_channels, hidden_channels=128,
        attn_channels=64, gated=True),
    local_branch=None, cross_attention=None,
    cell_branches=dict(rule='clam'))
herlev_backbone = 'work_dirs/cell_encoder_herlev/backbone.pth'
herlev_feature_cache = 'features/r18-w32-herlev_64/'
cell_encoder = dict(
    init_cfg=dict(type='Pretrained', checkpoint=herlev_backbone))
train_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
val_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
test_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
