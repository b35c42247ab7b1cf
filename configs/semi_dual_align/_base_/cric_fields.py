# The real CRIC Cervix fields for the CPU semi-supervised comparison of
# issue 19 (variables only, no config keys, so that a CPU config can inherit
# a mosaic config and this file together). Data:
#   python tools/dataset_converters/cric_to_coco.py ... \
#       --out-dir data/cric-cervix
#   python tools/dataset_converters/split_semi.py \
#       data/cric-cervix/annotations/train.json \
#       --out-dir data/cric-cervix/annotations/semi --seed 0
# (the paper's pool protocol, Sec. 3.2: one unlabeled set of 76 of the 151
# training fields for every row; 19 / 38 labeled fields for 25 / 50 %).
# Fields read at 512x380 as the CPU RetinaNet on CRIC
# (configs/retinanet/retinanet_r18-w32_fpn_adam-12e_1xb4_cric-cervix-512.py),
# evaluated on the held-out test fields with COCO AP, the paper's mAP over
# IoU 0.10:0.70 (Sec. 3.1) and the point metric (docs/point_metric.md).
# The schedule is the CPU budget of the comparison, the same for every row:
# cric_max_iters iterations (see README.md, "CRIC fields: the comparison").
cric_data_root = 'data/cric-cervix/'
cric_img_prefix = dict(img='images/')
cric_img_scale = (512, 380)
cric_max_iters = 600
cric_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=cric_max_iters, by_epoch=False,
         milestones=[400, 540], gamma=0.1)
]
# validate once, at the end (nothing is selected on the val fields)
cric_train_cfg = dict(max_iters=cric_max_iters, val_interval=cric_max_iters)
cric_checkpoint = dict(
    by_epoch=False, interval=100, max_keep_ckpts=1, save_last=True)
cric_coco_items = [
    'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100'
]
cric_val_evaluator = [
    dict(type='CocoMetric', ann_file=cric_data_root + 'annotations/val.json',
         metric='bbox', classwise=True, metric_items=cric_coco_items),
    dict(type='IoURangeCocoMetric', metric='bbox', prefix='iou_range',
         ann_file=cric_data_root + 'annotations/val.json'),
    dict(type='PointHitMetric',
         ann_file=cric_data_root + 'annotations/val.json')
]
cric_test_evaluator = [
    dict(e, ann_file=cric_data_root + 'annotations/test.json')
    for e in cric_val_evaluator
]
