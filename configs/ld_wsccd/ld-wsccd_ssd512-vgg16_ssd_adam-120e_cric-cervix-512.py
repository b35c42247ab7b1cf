# LD-WSCCD Table 4 row "SSD": the plain SSD512 of the full model (VGG16, the
# prior boxes of Eq. (4) with S_min 0.2 / S_max 0.9, MultiBox loss Eq. (5)-
# (7): loss_cls = L_conf, loss_bbox = L_loc), without MIL detector and
# without distillation; same data and schedule as the other rows. Its
# detections are the SSD's own. See ./README.md.
_base_ = './ld-wsccd_ssd512-vgg16_ssd-mil_adam-120e_cric-cervix-512.py'
model = dict(
    _delete_=True,
    type='SingleStageDetector',
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    bbox_head=_base_.model.bbox_head,
    train_cfg=_base_.model.train_cfg,
    test_cfg=_base_.model.test_cfg)
