# The CPU RetinaNet of the main job trained to find the abnormal cells (LSIL,
# HSIL) of the 512 px ROIs composed from real Herlev cells
# (build_roi_set.py --source herlev; the composition is ours). NILM cells
# are background (`unknown_classes='ignore'` skips their boxes); NILM ROIs
# train as negatives. The cell detector of the slide-call check of
# configs/slide_screening/README.md. Not a paper setting.
#   python tools/dataset_converters/build_roi_set.py --preset cpu --source herlev \
#       --num-train 300 --num-val 60 --num-test 60 --out-dir data/cervical-roi-herlev-512
_base_ = ['./retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py']
herlev_data_root = 'data/cervical-roi-herlev-512/'
herlev_classes = ('LSIL', 'HSIL')
model = dict(bbox_head=dict(num_classes=len(herlev_classes)))
herlev_data = dict(
    data_root=herlev_data_root,
    metainfo=dict(classes=herlev_classes),
    unknown_classes='ignore')
train_dataloader = dict(dataset=dict(
    herlev_data, ann_file='annotations/train.json',
    data_prefix=dict(img='images/train/')))
val_dataloader = dict(dataset=dict(
    herlev_data, ann_file='annotations/val.json',
    data_prefix=dict(img='images/val/')))
test_dataloader = dict(dataset=dict(
    herlev_data, ann_file='annotations/test.json',
    data_prefix=dict(img='images/test/')))
val_evaluator = dict(ann_file=herlev_data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=herlev_data_root + 'annotations/test.json')
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.05)
]
default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=1))
