# CPU-sized stage 2 on the real CRIC fields: the half-width ResNet-18 PCN
# (configs/pcn_retinanet/_base_/pcn_resnet18-w32.py) from scratch on 64x64 patches cut
# from the TRAIN fields of data/cric-cervix (meta/train.txt) and validated on
# patches of the VAL fields (meta/val.txt, also its test split); no test
# field reaches the PCN (--forbid-fields). Stage 2 of the CPU PCN ablation
# on CRIC (benchmarks/cric_seed_runs.py --suite pcn,
# configs/pcn_retinanet/README.md). Not a paper setting: the paper's PCN is
# pcn_seresnext50-32x4d_gap_adam-30e_cervical-patches-bethesda-1024.py
# (SE-ResNeXt-50 from ImageNet, 224 px, Adam 4e-5, Sec. 3.1).
# Data (the CRIC fields at 688x510; box x1.5, square, 64 px, as the stage-3
# patch_cfg of the *_cric-cervix-512 configs):
#   python tools/dataset_converters/build_pcn_patches.py \
#       --coco-root data/cric-cervix --splits train val \
#       --img-dir data/cric-cervix/images \
#       --forbid-fields data/cric-cervix/annotations/test.json \
#       --out-dir data/cric-pcn-patches-64 --patch-size 64
_base_ = ['./pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512.py']
data_root = 'data/cric-pcn-patches-64/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
# no PCN test split: the val fields' patches
test_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file='meta/val.txt'))

# 3 epochs of the ~6000 train patches (188 steps of 32 each; after one
# epoch: val accuracy 93 %, ROC-AUC 97 %); the stage-3 configs load the
# last epoch (epoch_3.pth)
max_epochs = 3
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.01)
]
default_hooks = dict(logger=dict(interval=50))
