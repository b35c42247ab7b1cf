"""Tiny ROI-classifier assets for tests and benchmarks: a real-crop ROI set,
two ROI models (cached-feature and pixel), an encoder checkpoint and an
untrained tiny detector (random weights; seconds on a CPU)."""
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

NAMES = ['NILM', 'LSIL', 'HSIL']
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
ENCODER = dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, ))

ROI_CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['cervdet'], allow_failed_imports=False)
cell_size = 32
cell_context = 0.1
cell_encoder = {encoder!r}
model = dict(
    type='GlobalLocalROIClassifier',
    data_preprocessor=dict(type='ROIBagDataPreprocessor', mean={mean!r},
                           std={std!r}, to_rgb=True),
    {pixel}
    global_branch=dict(type='AttBLSTM', in_channels=64, hidden_size=8),
    local_branch=dict(type='CellViT', in_channels=64, embed_dims=16,
                      depth=1, num_heads=2, map_size=1),
    cross_attention=dict(type='ROICrossAttention', d_k=16),
    num_classes=3, class_names={names!r},
    cell_branches=dict(ratio=0.25, rule='shi', loss_weight=0.25))
'''

DET_CONFIG = '''
default_scope = 'mmdet'
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean={mean!r},
                           std={std!r}, bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4,
                  out_indices=(1, 2, 3), norm_eval=False, init_cfg=None),
    neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16,
              start_level=0, add_extra_convs='on_input', num_outs=3),
    bbox_head=dict(
        type='RetinaHead', num_classes=1, in_channels=16, stacked_convs=1,
        feat_channels=16,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                              scales_per_octave=1, ratios=[1.0],
                              strides=[8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.0,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=40))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(192, 192), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]
test_dataloader = dict(dataset=dict(type='CocoDataset', pipeline=test_pipeline,
                                    metainfo=dict(classes=('cell', ))))
'''


def make_tiny_roi_assets(tmp: Path, crop_root: Path) -> dict:
    """A 2+2+3 ROI set of 192 px real-crop ROIs, two ROI models (cached and
    pixel trained, random weights), an encoder checkpoint and a detector."""
    from cervdet.datasets import roi_sets as brs
    root = tmp / 'rois'
    brs.build_roi_set(root, crop_root, roi_size=192, cells_per_roi=(4, 7),
                      num_train=2, num_val=2, num_test=3,
                      crop_scale=(0.4, 0.6), background='paper',
                      progress=False)
    out = dict(root=root)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        encoder = MODELS.build(ENCODER)
    enc_state = {f'backbone.{k}': v for k, v in encoder.state_dict().items()}
    torch.save(dict(state_dict=enc_state), tmp / 'encoder.pth')
    out['encoder_ckpt'] = tmp / 'encoder.pth'
    for kind, pixel in (('cached', ''),
                        ('pixel', f'cell_encoder={ENCODER!r},')):
        cfg = tmp / f'roi_{kind}.py'
        cfg.write_text(ROI_CONFIG.format(encoder=ENCODER, mean=MEAN, std=STD,
                                         names=NAMES, pixel=pixel))
        model_cfg = Config.fromfile(str(cfg)).model
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(model_cfg)
        if kind == 'pixel':  # a real encoder, other than encoder.pth
            torch.manual_seed(1)
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                model.cell_encoder.load_state_dict(
                    MODELS.build(ENCODER).state_dict())
        torch.save(dict(state_dict=model.state_dict(), meta={}),
                   tmp / f'roi_{kind}.pth')
        out[f'{kind}_cfg'] = cfg
        out[f'{kind}_ckpt'] = tmp / f'roi_{kind}.pth'
    det_cfg = tmp / 'det.py'
    det_cfg.write_text(DET_CONFIG.format(mean=MEAN, std=STD))
    from mmdet.registry import MODELS as DET_MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(Config.fromfile(str(det_cfg)).model)
    det.init_weights()
    torch.save(dict(state_dict=det.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('cell', )))),
               tmp / 'det.pth')
    out.update(det_cfg=det_cfg, det_ckpt=tmp / 'det.pth')
    return out


__all__ = ['make_tiny_roi_assets', 'NAMES', 'ENCODER']
