# ./global-local_r18-w32-e2e_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py (the
# CPU full model trained from pixels, cell CNN initialised from DINO and
# trained end to end from the ROI labels only) on the Herlev ROI set of
# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_herlev-roi-512.py. No
# feature cache. Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']  # noqa: E501
model = dict(cell_encoder=_base_.cpu_cell_encoder, freeze_cell_encoder=False)
pixel_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropCells', size=_base_.cpu_cell_size, context=0.0),
    dict(type='PackROIBagInputs'),
]
train_dataloader = dict(
    dataset=dict(
        data_root=_base_.cpu_herlev_data_root, feature_cache=None,
        pipeline=pixel_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=_base_.cpu_herlev_data_root, feature_cache=None,
        pipeline=pixel_pipeline))
test_dataloader = dict(
    dataset=dict(
        data_root=_base_.cpu_herlev_data_root, feature_cache=None,
        pipeline=pixel_pipeline))
