# RNN (Table 1 baseline) on the ROIs cut from the real
# CRIC fields (issue 19's comparison; the paper's Table 1, Sec. 3), in the
# CPU size of its *_cervical-roi-512.py config (model below), with the data,
# cached cell features and budget of the full model's CRIC config
# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cric-roi-fields.py.
# Not a paper setting: CPU size (see the CPU config).
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(
    global_branch=dict(
        _delete_=True, type='RNNAggregator', cell='rnn',
        in_channels=_base_.cpu_feat_channels, hidden_size=256,
        bidirectional=False, pooling='last'),
    local_branch=None, cross_attention=None, cell_branches=None)
# cell CNN: the CRIC-tile DINO backbone (tools/cric_dino_init.sh; no test
# field seen), its own feature cache
cell_encoder = dict(init_cfg=dict(checkpoint=_base_.cric_dino_backbone))
cric_fields = dict(
    data_root='data/cric-roi-fields/', feature_cache=_base_.cric_feature_cache,
    cell_source='annotations', det_file=None)
train_dataloader = dict(dataset=cric_fields)
val_dataloader = dict(dataset=cric_fields)
test_dataloader = dict(dataset=cric_fields)
