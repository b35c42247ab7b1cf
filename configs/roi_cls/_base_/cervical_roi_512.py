# The CPU size shared by the configs/roi_cls/*-cpu_* configs (variables
# only, no config keys, so that a CPU config can inherit a paper config and
# this file together): the 512 px CPU ROI set, a half-width ResNet-18 cell
# encoder (base 32 channels: 256-channel stage-4 maps, 2x2 at 64 px) with
# the DINO weights of configs/ssl/dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py
# (no ImageNet weights offline; a random CNN gives these cells no usable
# features, README), AdamW for 20 epochs. Not a paper setting: built for the
# CPU measurements of configs/roi_cls/README.md.
#   python tools/dataset_converters/build_roi_set.py --preset cpu \
#       --num-train 300 --num-val 60 --num-test 60 --out-dir data/cervical-roi-512
cpu_data_root = 'data/cervical-roi-512/'
cpu_feature_cache = 'features/r18-w32-dino_64/'
# tools/ssl/convert_backbone.py output (configs/ssl/README.md, step 3)
cpu_dino_backbone = 'work_dirs/dino_cpu/backbone_teacher.pth'
# the ROI sets cut from the real CRIC fields (*_cric-roi-fields.py): the
# same encoder with the CRIC-tile DINO weights of tools/cric_dino_init.sh
# (configs/ssl/dino_resnet18-w32_sgd-6e_cric-tiles.py on tiles of the CRIC
# train + val fields only, labels unused), in its own feature cache
cric_dino_backbone = 'data/pretrained/dino_r18-w32_cric-tiles.pth'
cric_feature_cache = 'features/r18-w32-dino-cric-tiles_64/'
cpu_cell_size = 64
cpu_feat_channels = 256
cpu_cell_encoder = dict(
    type='ResNet',
    depth=18,
    stem_channels=32,
    base_channels=32,
    out_indices=(3, ),
    init_cfg=dict(type='Pretrained', checkpoint=cpu_dino_backbone))
# CPU sets: the annotated cell boxes (the paper's detected cells are the
# default of the paper configs; no cell detector is trained for the CPU sets)
cpu_data = dict(
    data_root=cpu_data_root, feature_cache=cpu_feature_cache,
    cell_source='annotations', det_file=None)
# the same ROI set composed from Herlev cells (build_roi_set.py --source
# herlev, the *_herlev-roi-512.py configs), same encoder and cache name
cpu_herlev_data_root = 'data/cervical-roi-herlev-512/'
cpu_herlev_data = dict(
    data_root=cpu_herlev_data_root, feature_cache=cpu_feature_cache,
    cell_source='annotations', det_file=None)
cpu_loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
cpu_max_epochs = 20
cpu_train_cfg = dict(
    by_epoch=True, max_epochs=cpu_max_epochs, val_interval=5)
cpu_optimizer = dict(type='AdamW', lr=1e-3, weight_decay=1e-2)
cpu_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
         end=cpu_max_epochs, eta_min_ratio=0.01)
]
