# Supervised pre-training of the CPU ROI configs' cell encoder (the half-width
# ResNet-18 of ../_base_/cervical_roi_512.py, random init) as a normal-vs-abnormal
# cell classifier on Herlev (716 conventional Pap cells of another public set
# than the CRIC crops of the ROI set: the ROI model stays weakly supervised,
# no test cell is seen). Cells at 64 px, normalised as
# tools/roi_cls/extract_cell_features.py does for the CPU configs (ImageNet
# mean / std on RGB, the ROIBagDataPreprocessor of the ROI configs). GAP +
# linear head, Adam 30 epochs. Not a paper setting (the paper starts from an
# ImageNet ResNet-50, not available offline). In a subfolder: it is a cell
# classifier, not one of the ROI classifier configs of configs/roi_cls/*.py.
# Steps:
#   python tools/dataset_converters/herlev_binary_split.py \
#       --data-root ../shared/data --out-dir data/herlev-binary --seed 0
#   python tools/train.py <this config> --work-dir work_dirs/cell_encoder_herlev
#   python tools/roi_cls/extract_cell_features.py \
#       configs/roi_cls/global-local_r18-w32-herlev_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py \
#       --split all --checkpoint work_dirs/cell_encoder_herlev/best_pcn_roc_auc_epoch_<k>.pth \
#       --checkpoint-prefix backbone.
_base_ = ['../_base_/cervical_roi_512.py', '../../pcn_retinanet/_base_/pcn_runtime.py']

# the shared data folder (list paths are relative to it) and the lists
herlev_data_prefix = '../shared/data/'
herlev_lists = 'data/herlev-binary/'
classes = ('normal', 'abnormal')

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=2,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    # exactly the CPU ROI configs' cell encoder, from scratch
    backbone=dict(_base_.cpu_cell_encoder, init_cfg=None),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=2,
        in_channels=_base_.cpu_feat_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

cell_size = _base_.cpu_cell_size
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # mild: the ROI cells fill their boxes (whole 100 px CRIC crops)
    dict(type='RandomResizedCrop', scale=cell_size,
         crop_ratio_range=(0.5, 1.0), interpolation='area'),
    # cells have no orientation: flips x rotations by 90 (all 8 of D4)
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='Rotate', angle=90., prob=0.5, random_negative_prob=0.5,
         pad_val=0),
    # Herlev's stain differs from the CRIC Pap crops: weaken the colour cue
    # (no hue jitter: mmcv's adjust_hue overflows on negative shifts with
    # numpy 2)
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.4),
    dict(type='RandomGrayscale', prob=0.3, keep_channels=True),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(cell_size, cell_size), keep_ratio=False,
         interpolation='area'),
    dict(type='PackInputs'),
]


def _dataset(split, pipeline):
    return dict(
        type='CustomDataset',
        data_root='',
        ann_file=f'{herlev_lists}{split}.txt',
        data_prefix=herlev_data_prefix,
        with_label=True,
        metainfo=dict(classes=classes),
        pipeline=pipeline)


train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_dataset('train', train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_dataset('val', test_pipeline))
test_dataloader = val_dataloader
# Accuracy (top-1, %) and abnormal-vs-normal ROC-AUC (%, pcn/roc_auc: the
# checkpoint kept by the runtime's save_best)
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='ROCAUC', normal_index=0)
]
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=2)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.01)
]
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10))
