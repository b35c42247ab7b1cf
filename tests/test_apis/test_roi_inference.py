"""Tests of cervdet.apis.ROIInferencer on real crop-composed ROIs.

The helpers :func:`make_tiny_assets` (tiny ROI set, ROI models trained on
cached features and from pixels, their checkpoints, an encoder checkpoint and
an untrained tiny detector) are shared with
``tests/test_tools/test_roi_cls_infer.py``.
"""
import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import cervdet.apis  # noqa: F401
from cervdet.apis import (
    ROIInferencer,
    cell_normalisation,
    load_coco_boxes,
    select_detections,
)
from cervdet.datasets.transforms import crop_and_resize

ROOT = Path(__file__).resolve().parents[2]
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


def make_tiny_assets(tmp: Path, crop_root: Path) -> dict:
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


@pytest.fixture(scope='module')
def assets(shared_data, tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp('roi_infer'),
                            shared_data / 'cric_crops_bethesda')


def _test_roi(assets, i=0):
    ann = json.loads((assets['root'] / 'annotations' / 'test.json')
                     .read_text())
    img = ann['images'][i]
    path = assets['root'] / 'images' / 'test' / img['file_name']
    xywh = np.array([a['bbox'] for a in ann['annotations']
                     if a['image_id'] == img['id']], np.float32)
    return path, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)


def _check_result(res, n):
    assert res['classes'] == NAMES
    assert res['num_cells'] == len(res['cells']) == n
    assert sum(res['roi_scores'].values()) == pytest.approx(1, abs=1e-5)
    assert res['roi_class'] == max(res['roi_scores'],
                                   key=res['roi_scores'].get)
    att = np.array([c['attention'] for c in res['cells']])
    assert att.sum() == pytest.approx(1, abs=1e-5) and (att >= 0).all()
    for c in res['cells']:
        assert sum(c['cell_scores'].values()) > 0
        assert c['cell_class'] == max(c['cell_scores'],
                                      key=c['cell_scores'].get)
    assert res['timing']['total'] >= res['timing']['encode'] > 0


def test_given_boxes_pixel_model_matches_pixel_mode(assets):
    path, boxes = _test_roi(assets)
    inf = ROIInferencer(assets['pixel_cfg'], assets['pixel_ckpt'])
    assert not inf.attached_encoder
    res = inf(str(path), boxes=boxes)
    _check_result(res, len(boxes))
    assert res['img_path'] == str(path) and res['cell_source'] == 'boxes'
    np.testing.assert_allclose([c['bbox'] for c in res['cells']], boxes,
                               atol=0.01)
    # the same numbers as the model's own pixel mode (data preprocessor)
    from cervdet.datasets.transforms import expand_boxes
    crops = crop_and_resize(cv2.imread(str(path)), expand_boxes(boxes, 0.1),
                            32)
    model = inf.model
    data = model.data_preprocessor(dict(inputs=[torch.from_numpy(crops)],
                                        data_samples=None))
    ref = model(**data, mode='predict')[0]
    np.testing.assert_allclose(list(res['roi_scores'].values()),
                               ref.pred_score.numpy(), atol=1e-5)
    np.testing.assert_allclose([c['attention'] for c in res['cells']],
                               ref.cell_attention.numpy(), atol=1e-5)
    # ndarray input, out-of-image and empty boxes
    img = cv2.imread(str(path))
    bad = np.vstack([boxes, [[500, 500, 600, 600]]])
    with pytest.warns(UserWarning, match='1 given boxes are empty'):
        res2 = inf(img, boxes=bad)
    assert res2['num_cells'] == len(boxes) and res2['img_path'] is None
    empty = inf(img, boxes=np.zeros((0, 4)))
    assert empty['roi_class'] is None and empty['reason'] == \
        'no cell box given' and empty['cells'] == []
    with pytest.raises(FileNotFoundError, match='cannot read image'):
        inf(str(path) + '.missing', boxes=boxes)
    with pytest.raises(ValueError, match='no detector'):
        inf(img)


def test_cached_model_gets_encoder_and_refuses_without(assets):
    path, boxes = _test_roi(assets, 1)
    with pytest.raises(ValueError, match='--encoder-checkpoint'):
        ROIInferencer(assets['cached_cfg'], assets['cached_ckpt'])
    with pytest.raises(ValueError, match="prefix 'model.'"):
        ROIInferencer(assets['cached_cfg'], assets['cached_ckpt'],
                      encoder_checkpoint=str(assets['encoder_ckpt']),
                      encoder_checkpoint_prefix='model.')
    with pytest.warns(UserWarning, match='RANDOMLY'):
        ROIInferencer(assets['cached_cfg'], assets['cached_ckpt'],
                      allow_random_encoder=True)
    inf = ROIInferencer(assets['cached_cfg'], assets['cached_ckpt'],
                        encoder_checkpoint=str(assets['encoder_ckpt']),
                        encoder_checkpoint_prefix='backbone.')
    assert inf.attached_encoder and inf.model.cell_encoder is not None
    assert (inf.cell_size, inf.cell_context) == (32, 0.1)
    enc = torch.load(assets['encoder_ckpt'])['state_dict']
    for k, v in inf.model.cell_encoder.state_dict().items():
        torch.testing.assert_close(v, enc[f'backbone.{k}'])
    res = inf(str(path), boxes=boxes)
    _check_result(res, len(boxes))
    # features exactly as extract_cell_features.py computes them
    from cervdet.datasets import cell_feature_cache as efx
    cfg = Config.fromfile(str(assets['cached_cfg']))
    mean, std, to_rgb = efx.normalisation(cfg)
    m2, s2, r2 = cell_normalisation(cfg)
    np.testing.assert_array_equal(mean, m2)
    np.testing.assert_array_equal(std, s2)
    assert to_rgb == r2
    for pre in (dict(), dict(mean=[1, 2, 3], std=[4, 5, 6])):
        c = Config(dict(model=dict(data_preprocessor=pre)))
        assert [x.tolist() if hasattr(x, 'tolist') else x
                for x in efx.normalisation(c)] == \
            [x.tolist() if hasattr(x, 'tolist') else x
             for x in cell_normalisation(c)]
    from cervdet.datasets.transforms import expand_boxes
    crops = crop_and_resize(cv2.imread(str(path)), expand_boxes(boxes, 0.1),
                            32)
    pooled, maps = efx.encode(inf.model.cell_encoder, crops, mean, std,
                              to_rgb, 64, 'cpu')
    # cached-mode model on the extracted features (as trained)
    data = inf.model.data_preprocessor(dict(
        inputs=[dict(pooled=pooled, maps=maps)], data_samples=None))
    ref = inf.model(**data, mode='predict')[0]
    np.testing.assert_allclose(list(res['roi_scores'].values()),
                               ref.pred_score.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        [list(c['cell_scores'].values()) for c in res['cells']],
        ref.cell_scores.numpy(), atol=1e-5)
    # a checkpoint of another model is refused with the key names
    with pytest.raises(ValueError, match='does not fit the model'):
        ROIInferencer(assets['cached_cfg'], assets['encoder_ckpt'],
                      encoder_checkpoint=str(assets['encoder_ckpt']),
                      encoder_checkpoint_prefix='backbone.')


def test_detector_cells(assets):
    path, _ = _test_roi(assets, 2)
    scope = DefaultScope.get_current_instance().scope_name
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        inf = ROIInferencer(assets['pixel_cfg'], assets['pixel_ckpt'],
                            det_config=str(assets['det_cfg']),
                            det_checkpoint=str(assets['det_ckpt']),
                            det_score_thr=0.0, det_max_cells=7)
    res = inf(str(path))
    # the caller's default scope is left alone
    assert DefaultScope.get_current_instance().scope_name == scope
    assert res['cell_source'] == 'detector'
    _check_result(res, 7)
    scores = [c['det_score'] for c in res['cells']]
    assert scores == sorted(scores, reverse=True)
    assert {c['det_label'] for c in res['cells']} == {'cell'}
    for c in res['cells']:
        x1, y1, x2, y2 = c['bbox']
        assert 0 <= x1 < x2 <= 192 and 0 <= y1 < y2 <= 192
    assert res['timing']['detect'] > 0
    inf.det_score_thr = 0.999  # untrained: nothing that sure -> no crash
    res = inf(str(path))
    assert res['roi_class'] is None and res['num_cells'] == 0
    assert 'no cell detected with score >= 0.999' in res['reason']


def test_select_detections_and_coco_boxes(tmp_path):
    boxes = np.array([[0, 0, 10, 10], [5, 5, 5, 9], [-4, 2, 8, 300],
                      [1, 1, 3, 3], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.1, 0.7], np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    b, s, lab = select_detections(boxes, scores, labels, 0.3, 2, (100, 50))
    # box 1 has zero width, box 3 is below the threshold; best two kept
    np.testing.assert_allclose(s, [0.8, 0.7])
    np.testing.assert_array_equal(lab, [2, 1])
    np.testing.assert_array_equal(b[0], [0, 2, 8, 100])  # clipped
    assert select_detections(boxes, scores, labels, 0.95, 5,
                             (100, 50))[0].shape == (0, 4)
    ann = dict(images=[dict(id=1, file_name='a/x.jpg', roi_label='LSIL'),
                       dict(id=2, file_name='b/x.jpg'),
                       dict(id=3, file_name='y.jpg')],
               annotations=[dict(id=1, image_id=1, category_id=2,
                                 bbox=[1, 2, 3, 4]),
                            dict(id=2, image_id=3, category_id=1,
                                 bbox=[0, 0, 5, 5])],
               categories=[dict(id=1, name='NILM'), dict(id=2, name='LSIL')])
    f = tmp_path / 'ann.json'
    f.write_text(json.dumps(ann))
    got = load_coco_boxes(str(f))
    np.testing.assert_array_equal(got['a/x.jpg']['boxes'], [[1, 2, 4, 6]])
    assert got['a/x.jpg']['cell_classes'] == ['LSIL']
    assert got['a/x.jpg']['roi_label'] == 'LSIL'
    assert 'x.jpg' not in got  # ambiguous base name
    assert got['y.jpg']['cell_classes'] == ['NILM']
    assert got['b/x.jpg']['boxes'].shape == (0, 4)
    f.write_text('[]')
    with pytest.raises(ValueError, match='not a COCO annotation file'):
        load_coco_boxes(str(f))
