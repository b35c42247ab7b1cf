"""Tests of cervdet.apis.ROIInferencer on real crop-composed ROIs.

The assets (tiny ROI set, ROI models for cached features and for pixels,
their checkpoints, an encoder checkpoint and an untrained tiny detector) come
from :func:`cervdet.testing.make_tiny_roi_assets`, shared with
``tests/test_tools/test_roi_cls_infer.py``.
"""
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cervdet.apis  # noqa: F401
from cervdet.apis import (
    ROIInferencer,
    cell_normalisation,
    load_coco_boxes,
    select_detections,
)
from cervdet.datasets.transforms import crop_and_resize
from cervdet.testing.roi_assets import NAMES, make_tiny_roi_assets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def assets(shared_data, tmp_path_factory):
    return make_tiny_roi_assets(tmp_path_factory.mktemp('roi_infer'),
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
