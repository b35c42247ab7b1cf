# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py with the
# cell encoder pre-trained supervised on Herlev normal vs abnormal
# (./cell_encoder/cell-encoder_r18-w32_gap_adam-30e_1xb32_herlev-binary-64.py: another public
# set than the ROI set's CRIC crops, so the ROI model stays weakly
# supervised) instead of DINO; only the encoder weights and the feature
# cache differ. Not a paper setting.
#   python tools/train.py configs/roi_cls/cell_encoder/cell-encoder_r18-w32_gap_adam-30e_1xb32_herlev-binary-64.py \
#       --work-dir work_dirs/cell_encoder_herlev
#   python tools/ssl/convert_backbone.py \
#       work_dirs/cell_encoder_herlev/best_pcn_roc_auc_epoch_<k>.pth \
#       --src-prefix backbone. --out work_dirs/cell_encoder_herlev/backbone.pth
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
herlev_backbone = 'work_dirs/cell_encoder_herlev/backbone.pth'
herlev_feature_cache = 'features/r18-w32-herlev_64/'
cell_encoder = dict(
    init_cfg=dict(type='Pretrained', checkpoint=herlev_backbone))
train_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
val_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
test_dataloader = dict(dataset=dict(feature_cache=herlev_feature_cache))
