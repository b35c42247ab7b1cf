# The CPU full model (./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py)
# on ROIs cut from the real CRIC fields (./global-local_r50_att-blstm-vit-b_sgd-90e_cric-roi-fields.py),
# cells = the CRIC marked cells (annotated boxes, 100 px native = 50 px in
# the 688 x 510 fields), DINO half-width ResNet-18 at 64 px (the CRIC-tile
# DINO weights of tools/cric_dino_init.sh). Not a paper setting.
#   python tools/dataset_converters/cric_fields_to_roi_set.py --out-dir data/cric-roi-fields
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
# cell CNN: the CRIC-tile DINO backbone (tools/cric_dino_init.sh; no test
# field seen), its own feature cache
cell_encoder = dict(init_cfg=dict(checkpoint=_base_.cric_dino_backbone))
cric_fields = dict(
    data_root='data/cric-roi-fields/', feature_cache=_base_.cric_feature_cache,
    cell_source='annotations', det_file=None)
train_dataloader = dict(dataset=cric_fields)
val_dataloader = dict(dataset=cric_fields)
test_dataloader = dict(dataset=cric_fields)
