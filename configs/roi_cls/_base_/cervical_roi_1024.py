# ROI set of 1024 px ROIs composed from the real CRIC crops (NILM / LSIL /
# HSIL, label = worst cell; the composition is ours):
#   python tools/dataset_converters/build_roi_set.py --preset 1024 \
#       --out-dir data/cervical-roi-1024
# Cells come from the annotation file (their boxes); to use a detector's
# boxes instead, set cell_source='detections', det_file=<COCO results JSON>.
# Training reads cached cell features (pooled + stage-4 maps) written by
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
# into data_root/features/<encoder>/ (feature_cache below).
dataset_type = 'ROIBagDataset'
data_root = 'data/cervical-roi-1024/'
feature_cache = 'features/r50_224/'
roi_classes = ('NILM', 'LSIL', 'HSIL')
# the cell crops (pixel mode, and what extract_cell_features.py crops)
cell_size = 224
cell_context = 0.0

cached_pipeline = [
    dict(type='LoadCellFeatures', keys=('pooled', 'maps')),
    dict(type='PackROIBagInputs'),
]
# from pixels (a model with a cell_encoder, e.g. end-to-end training):
pixel_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropCells', size=cell_size, context=cell_context),
    dict(type='PackROIBagInputs'),
]


def _dataset(split, pipeline=cached_pipeline):
    return dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'annotations/{split}.json',
        data_prefix=dict(img_path=f'images/{split}/'),
        metainfo=dict(classes=roi_classes),
        feature_cache=feature_cache,
        pipeline=pipeline)


train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_dataset('train'))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_dataset('val'))
test_dataloader = dict(val_dataloader, dataset=_dataset('test'))
# ROI accuracy, per-class precision / recall / F1, one-vs-rest ROC-AUC,
# confusion matrix, and cell accuracy (cells with labels) -> roi/...
val_evaluator = dict(type='ROIClassificationMetric')
test_evaluator = val_evaluator
