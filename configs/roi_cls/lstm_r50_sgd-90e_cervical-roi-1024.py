# Table 1 baseline (Shi et al.): a unidirectional LSTM over the pooled cell
# features, the last hidden state classified (no attention).
_base_ = ['./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py']
model = dict(
    global_branch=dict(
        _delete_=True, type='RNNAggregator', cell='lstm', in_channels=2048,
        hidden_size=1024, bidirectional=False, pooling='last'),
    local_branch=None, cross_attention=None, cell_branches=None)
