# ROI set of 1024 px ROIs composed from the real CRIC crops (NILM / LSIL /
# HSIL, label = worst cell; the composition is ours):
#   python tools/dataset_converters/build_roi_set.py --preset 1024 \
#       --out-dir data/cervical-roi-1024
# Cells come from a cell detector, as in the paper (Sec. 1, 2.1, 3: YOLOv4
# "pretrained in the cell detection task which only provides the location
# of cells"): cell_source='detections' reads a COCO results JSON of any
# detector run over the ROI images (det_file below, e.g. the class-agnostic
# YOLOX of cell_detector/ (trained on an ROI set's cells_<split>.json of
# tools/dataset_converters/cric_fields_to_roi_set.py) or a RetinaNet:
#   python tools/test.py <detector config> <checkpoint> --cfg-options \
#     test_dataloader.dataset.data_root=data/cervical-roi-1024/ \
#     test_dataloader.dataset.ann_file=annotations/<split>.json \
#     test_dataloader.dataset.data_prefix.img=images/<split>/ \
#     test_evaluator.format_only=True \
#     test_evaluator.ann_file=data/cervical-roi-1024/annotations/<split>.json \
#     test_evaluator.outfile_prefix=data/cervical-roi-1024/detections/<split>
# ). YOLOv4 itself is not in mmdet 3.3. The annotated cell boxes are the
# option cell_source='annotations' (det_file=None).
# Training reads cached cell features (pooled + stage-4 maps) written by
#   python tools/roi_cls/extract_cell_features.py <this config> --split all
# into data_root/features/<encoder>/ (feature_cache below).
dataset_type = 'ROIBagDataset'
data_root = 'data/cervical-roi-1024/'
feature_cache = 'features/r50_224/'
roi_classes = ('NILM', 'LSIL', 'HSIL')
cell_source = 'detections'
det_score_thr = 0.3
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
        cell_source=cell_source,
        det_file=(f'detections/{split}.bbox.json'
                  if cell_source == 'detections' else None),
        det_score_thr=det_score_thr,
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
