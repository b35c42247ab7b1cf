# Table 1 baseline (Shi et al.): CLAM-style attention MIL (gated attention
# pooling, Ilse et al. 2018) over the pooled cell features, with CLAM's
# instance branches on the pooled features (top / least attended 10 %,
# CLAM's in-class / out-of-class rule, weight 0.25 as the full model's).
_base_ = ['./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py']
model = dict(
    global_branch=dict(
        _delete_=True, type='GatedAttentionMIL', in_channels=2048,
        hidden_channels=512, attn_channels=256, gated=True),
    local_branch=None, cross_attention=None,
    cell_branches=dict(rule='clam'))
