# RNN (Table 1 baseline) in the CPU size of ./rnn_r18-w32_adamw-cpu_cervical-roi-512.py
# on the ROIs cut from the real CRIC fields, with the same data, cached cell
# features and budget as ./global-local_r18-w32_att-blstm-vit_adamw-cpu_cric-roi-fields.py
# (issue 19's comparison; the paper's Table 1 baselines, Sec. 3). Not a
# paper setting: CPU size (see the CPU config).
_base_ = ['./rnn_r18-w32_adamw-cpu_cervical-roi-512.py']
cric_fields = dict(
    data_root='data/cric-roi-fields/', feature_cache=_base_.cpu_feature_cache,
    cell_source='annotations', det_file=None)
train_dataloader = dict(dataset=cric_fields)
val_dataloader = dict(dataset=cric_fields)
test_dataloader = dict(dataset=cric_fields)
