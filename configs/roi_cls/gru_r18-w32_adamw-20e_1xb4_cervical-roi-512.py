# CPU size of ./gru_r50_sgd-90e_cervical-roi-1024.py (Table 1 baseline:
# GRU, last hidden state). Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(
    global_branch=dict(
        _delete_=True, type='RNNAggregator', cell='gru',
        in_channels=_base_.cpu_feat_channels, hidden_size=256,
        bidirectional=False, pooling='last'),
    local_branch=None, cross_attention=None, cell_branches=None)
