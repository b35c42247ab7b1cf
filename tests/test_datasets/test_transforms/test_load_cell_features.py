"""Tests of LoadCellFeatures and PackROIBagInputs (cache round trip)."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpretrain.structures import DataSample

from cervdet.datasets.transforms import (
    LoadCellFeatures,
    PackROIBagInputs,
    check_cache_boxes,
)

BOXES = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]], np.float32)


def _cache(tmp_path, boxes=BOXES, maps=True):
    rng = np.random.default_rng(0)
    arrays = dict(pooled=rng.normal(size=(len(boxes), 6)).astype(np.float16),
                  boxes=boxes)
    if maps:
        arrays['maps'] = rng.normal(size=(len(boxes), 6, 2, 2)).astype(
            np.float16)
    path = tmp_path / 'roi.npz'
    np.savez(path, **arrays)
    return path, arrays


def _results(path, **kw):
    res = dict(cache_path=str(path), cell_bboxes=BOXES.copy(),
               cell_labels=np.array([0, 2, -1]), roi_label=2,
               img_path='x.jpg', ori_shape=(64, 48), img_id=3)
    res.update(kw)
    return res


def test_round_trip_cached_mode(tmp_path):
    path, arrays = _cache(tmp_path)
    res = LoadCellFeatures()(_results(path))
    assert res['cell_pooled'].dtype == np.float32
    np.testing.assert_array_equal(res['cell_pooled'],
                                  arrays['pooled'].astype(np.float32))
    assert res['cell_maps'].shape == (3, 6, 2, 2)
    packed = PackROIBagInputs()(res)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert set(inputs) == {'pooled', 'maps'}
    assert inputs['pooled'].dtype == torch.float32
    assert inputs['maps'].shape == (3, 6, 2, 2)
    assert isinstance(sample, DataSample)
    assert sample.gt_label.tolist() == [2]
    assert sample.cell_bboxes.dtype == torch.float32
    torch.testing.assert_close(sample.cell_bboxes, torch.from_numpy(BOXES))
    assert sample.cell_labels.dtype == torch.long
    assert sample.cell_labels.tolist() == [0, 2, -1]
    assert sample.num_cells == 3 and sample.ori_shape == (64, 48)
    assert sample.img_path == 'x.jpg'
    batch = pseudo_collate([packed, packed])
    assert len(batch['inputs']) == 2 and len(batch['data_samples']) == 2


def test_pooled_only(tmp_path):
    path, _ = _cache(tmp_path, maps=False)
    res = LoadCellFeatures(keys=('pooled', ))(_results(path))
    packed = PackROIBagInputs()(res)
    assert set(packed['inputs']) == {'pooled'}
    with pytest.raises(KeyError, match="has no 'maps'.*--no-maps"):
        LoadCellFeatures()(_results(path))


def test_stale_cache_error(tmp_path):
    path, _ = _cache(tmp_path, boxes=BOXES + np.float32(1))
    with pytest.raises(ValueError, match='cache .*roi.npz is stale.*rerun '
                       'tools/roi_cls/extract_cell_features.py'):
        LoadCellFeatures()(_results(path))
    path, _ = _cache(tmp_path, boxes=BOXES[:2])
    with pytest.raises(ValueError, match='stale'):
        LoadCellFeatures()(_results(path))


def test_missing_cache_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='no feature cache .*'
                       'extract_cell_features.py'):
        LoadCellFeatures()(_results(tmp_path / 'nope.npz'))
    with pytest.raises(KeyError, match='feature_cache'):
        LoadCellFeatures()(dict(cell_bboxes=BOXES))


def test_check_cache_boxes():
    assert check_cache_boxes(BOXES.astype(np.float64), BOXES)
    assert not check_cache_boxes(BOXES + 0.1, BOXES)
    assert not check_cache_boxes(BOXES[:1], BOXES)


def test_keys_must_include_pooled():
    with pytest.raises(ValueError, match="keys must be"):
        LoadCellFeatures(keys=('maps', ))
    with pytest.raises(ValueError, match="keys must be"):
        LoadCellFeatures(keys=('pooled', 'feat'))
