# ./att-mil_r18-w32_adamw-cpu_cervical-roi-512.py (CLAM-style attention MIL)
# on the features of the Herlev-pretrained cell encoder, as
# ./global-local_r18-w32-herlev_att-blstm-vit_adamw-cpu_cervical-roi-512.py
# (same cache: extract it once with either config). Not a paper setting.
_base_ = ['./att-mil_r18-w32_adamw-cpu_cervical-roi-512.py']
herlev_backbone = 'work_dirs/cell_encoder_herlev/backbone.pth'
herlev_feature_cache = 'features/r18-w32-herlev_64/'
cell_encoder = dict(
    init_cfg=dict(type='Pretrained', checkpoint=herlev_backbone))
train_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
val_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
test_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
