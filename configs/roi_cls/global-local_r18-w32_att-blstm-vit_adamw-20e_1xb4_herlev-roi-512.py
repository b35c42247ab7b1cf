# ./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py (the CPU
# full model) on the ROI set composed from real Herlev cells instead of the
# CRIC crops (learnable cells; NILM / LSIL / HSIL cell classes mapped from
# the Herlev folders, tools/dataset_converters/build_roi_set.py --source
# herlev). Only the data root (and thus its feature cache) differs: same
# DINO cell encoder (self-supervised on unlabeled ThinPrep / EDF tiles, never
# saw a Herlev label), same model, AdamW 20 epochs. Not a paper setting.
#   python tools/dataset_converters/build_roi_set.py --preset cpu \
#       --source herlev --num-train 300 --num-val 60 --num-test 60 \
#       --out-dir data/cervical-roi-herlev-512
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
_base_ = ['./global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py']
train_dataloader = dict(dataset=_base_.cpu_herlev_data)
val_dataloader = dict(dataset=_base_.cpu_herlev_data)
test_dataloader = dict(dataset=_base_.cpu_herlev_data)
