# The CPU full model (./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py)
# trained from pixels: the half-width ResNet-18 cell encoder is part of the
# model and learns end to end (freeze_cell_encoder=False) from the ROI
# labels; no feature cache. Not a paper setting.
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
model = dict(cell_encoder=_base_.cpu_cell_encoder, freeze_cell_encoder=False)
pixel_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropCells', size=_base_.cpu_cell_size, context=0.0),
    dict(type='PackROIBagInputs'),
]
train_dataloader = dict(
    dataset=dict(feature_cache=None, pipeline=pixel_pipeline))
val_dataloader = dict(
    dataset=dict(feature_cache=None, pipeline=pixel_pipeline))
test_dataloader = dict(
    dataset=dict(feature_cache=None, pipeline=pixel_pipeline))
