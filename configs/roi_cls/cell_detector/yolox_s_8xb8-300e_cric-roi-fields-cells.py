# A class-agnostic, YOLO-family cell detector for the ROI classifier's
# detected cells (Shi et al., ISBI 2022, Sec. 1, 2.1, 3: cells detected by
# YOLOv4 "pretrained in the cell detection task which only provides the
# location of cells"). YOLOv4 is not in mmdet 3.3: mmdet's YOLOX-s with one
# class `cell`, trained on the marked cells of the CRIC-field ROI set (the
# cells_<split>.json written by tools/dataset_converters/
# cric_fields_to_roi_set.py; CRIC did not mark every cell, so the detector
# learns the marked ones). Only the boxes are used downstream, never a class.
# Not a paper setting (the paper's detector and its data are not public);
# mmdet's YOLOX-s schedule (300 epochs, batch 8 x 8 GPUs) is kept.
#   python tools/dataset_converters/cric_fields_to_roi_set.py --out-dir data/cric-roi-fields
#   python tools/train.py <this config>
#   # detections of every split for the ROI classifier's det_file:
#   python tools/test.py <this config> <checkpoint> --cfg-options \
#       test_dataloader.dataset.ann_file=annotations/cells_<split>.json \
#       test_dataloader.dataset.data_prefix.img=images/<split>/ \
#       test_evaluator.format_only=True \
#       test_evaluator.ann_file=data/cric-roi-fields/annotations/cells_<split>.json \
#       test_evaluator.outfile_prefix=data/cric-roi-fields/detections/<split>
# (the ROI configs read detections/<split>.bbox.json; ROIBagDataset clips
# boxes sticking out of the ROI and keeps those with score >= 0.3).
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['cervdet'], allow_failed_imports=False)

data_root = 'data/cric-roi-fields/'
metainfo = dict(classes=('cell', ))
model = dict(bbox_head=dict(num_classes=1))
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/cells_train.json',
            data_prefix=dict(img='images/train/'))))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/cells_val.json',
        data_prefix=dict(img='images/val/')))
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/cells_test.json',
        data_prefix=dict(img='images/test/')))
val_evaluator = dict(ann_file=data_root + 'annotations/cells_val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/cells_test.json')
