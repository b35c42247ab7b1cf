"""Tests of cervdet.datasets.ROIBagDataset (hand-made annotation files)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

from cervdet.datasets import ROIBagDataset, cache_name, xywh_to_xyxy_checked

CATS = [dict(id=1, name='NILM'), dict(id=2, name='ASC-US'),
        dict(id=3, name='HSIL')]
MAPPING = {'NILM': 'NILM', 'ASC-US': 'LSIL', 'HSIL': 'HSIL'}


def _write_set(root: Path, images=None, annotations=None, **top):
    """Three 64x48 ROIs: NILM (2 cells), LSIL (2 cells), HSIL (1 cell)."""
    (root / 'img').mkdir(parents=True, exist_ok=True)
    if images is None:
        images = [dict(id=i + 1, file_name=f'r{i}.jpg', width=64, height=48,
                       roi_label=lab)
                  for i, lab in enumerate(['NILM', 'LSIL', 'HSIL'])]
    for img in images:
        cv2.imwrite(str(root / 'img' / img['file_name']),
                    np.full((48, 64, 3), 200, np.uint8))
    if annotations is None:
        annotations = [
            dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10]),
            dict(id=2, image_id=1, category_id=1, bbox=[20, 5, 10, 20]),
            dict(id=3, image_id=2, category_id=2, bbox=[1, 1, 5, 5]),
            dict(id=4, image_id=2, category_id=1, bbox=[30, 30, 34.5, 18.5]),
            dict(id=5, image_id=3, category_id=3, bbox=[10, 10, 8, 8])]
    ann = dict(images=images, annotations=annotations, categories=CATS,
               roi_classes=['NILM', 'LSIL', 'HSIL'], cell_to_roi_class=MAPPING)
    ann.update(top)
    path = root / 'ann.json'
    path.write_text(json.dumps(ann))
    return path


def _build(root, **kw):
    cfg = dict(type='ROIBagDataset', data_root=str(root), ann_file='ann.json',
               data_prefix=dict(img_path='img/'))
    cfg.update(kw)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(cfg)


def test_loads_interface_fields(tmp_path):
    _write_set(tmp_path)
    ds = _build(tmp_path, feature_cache='cache')
    assert isinstance(ds, ROIBagDataset) and len(ds) == 3
    assert ds.metainfo['classes'] == ('NILM', 'LSIL', 'HSIL')
    assert ds.get_gt_labels().tolist() == [0, 1, 2]
    assert ds.get_cat_ids(1) == [1]
    assert ds.class_counts() == dict(NILM=1, LSIL=1, HSIL=1)
    info = ds.get_data_info(1)
    assert info['img_path'] == str(tmp_path / 'img' / 'r1.jpg')
    assert info['roi_label'] == 1 and info['num_cells'] == 2
    assert info['ori_shape'] == (48, 64)
    assert info['cell_bboxes'].dtype == np.float32
    # the 0.5 px overhang of annotation 4 is clipped to the 64x48 ROI
    np.testing.assert_allclose(info['cell_bboxes'],
                               [[1, 1, 6, 6], [30, 30, 64, 48]])
    assert info['cell_labels'].dtype == np.int64
    assert info['cell_labels'].tolist() == [1, 0]  # ASC-US -> LSIL
    assert info['cache_path'] == str(tmp_path / 'cache' / 'img__r1.npz')


def test_metainfo_classes_override(tmp_path):
    _write_set(tmp_path)
    ds = _build(tmp_path, metainfo=dict(classes=('HSIL', 'LSIL', 'NILM')))
    assert ds.get_gt_labels().tolist() == [2, 1, 0]
    assert ds.get_data_info(1)['cell_labels'].tolist() == [1, 2]


def test_unknown_roi_label(tmp_path):
    _write_set(tmp_path)
    with pytest.raises(ValueError, match=r"ann.json: image id 2 \(r1.jpg\): "
                       r"roi_label 'LSIL' is not one of the ROI classes "
                       r"\['NILM', 'ABN'\]"):
        _build(tmp_path, metainfo=dict(classes=('NILM', 'ABN')))


def test_missing_image(tmp_path):
    _write_set(tmp_path)
    (tmp_path / 'img' / 'r2.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=r'image id 3 \(r2.jpg\): '
                       r'image file .*r2.jpg not found; check data_root'):
        _build(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=[])))
    with pytest.raises(ValueError, match='ann.json: no ROIs'):
        _build(tmp_path)


def test_box_outside_image(tmp_path):
    anns = [dict(id=7, image_id=1, category_id=1, bbox=[60, 0, 10, 10])]
    _write_set(tmp_path, images=[dict(id=1, file_name='a.jpg', width=64,
                                      height=48, roi_label='NILM')],
               annotations=anns)
    with pytest.raises(ValueError, match=r'image id 1 \(a.jpg\): box of '
                       r'annotation id 7 .* outside the 64x48 ROI'):
        _build(tmp_path)


def test_zero_area_box(tmp_path):
    anns = [dict(id=9, image_id=1, category_id=1, bbox=[5, 5, 0, 4])]
    _write_set(tmp_path, images=[dict(id=1, file_name='a.jpg', width=64,
                                      height=48, roi_label='NILM')],
               annotations=anns)
    with pytest.raises(ValueError, match='annotation id 9 has a zero-area box'):
        _build(tmp_path)


def test_zero_cell_roi_error_and_skip(tmp_path):
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10])]
    _write_set(tmp_path, annotations=anns)
    with pytest.raises(ValueError, match=r'image id 2 \(r1.jpg\) has no cells.*'
                       'empty_roi="skip"'):
        _build(tmp_path)
    ds = _build(tmp_path, empty_roi='skip')
    assert len(ds) == 1 and ds.get_data_info(0)['img_id'] == 1


def test_detections_source_with_threshold(tmp_path):
    _write_set(tmp_path)
    dets = [dict(image_id=1, bbox=[0, 0, 10, 10], score=0.9, category_id=1),
            dict(image_id=1, bbox=[5, 5, 10, 10], score=0.2, category_id=1),
            dict(image_id=2, bbox=[1, 2, 3, 4], score=0.5, category_id=1),
            dict(image_id=3, bbox=[1, 2, 3, 4], score=0.31, category_id=1)]
    (tmp_path / 'dets.json').write_text(json.dumps(dets))
    ds = _build(tmp_path, cell_source='detections', det_file='dets.json')
    assert [ds.get_data_info(i)['num_cells'] for i in range(3)] == [1, 1, 1]
    info = ds.get_data_info(1)
    np.testing.assert_allclose(info['cell_bboxes'], [[1, 2, 4, 6]])
    assert info['cell_labels'].tolist() == [-1]
    np.testing.assert_allclose(info['cell_scores'], [0.5])
    ds = _build(tmp_path, cell_source='detections', det_file='dets.json',
                det_score_thr=0.1)
    assert ds.get_data_info(0)['num_cells'] == 2
    with pytest.raises(ValueError, match=r'image id 3 \(r2.jpg\) has no cells '
                       r'\(detections with score >= 0.4'):
        _build(tmp_path, cell_source='detections', det_file='dets.json',
               det_score_thr=0.4)
    ds = _build(tmp_path, cell_source='detections', det_file='dets.json',
                det_score_thr=0.4, empty_roi='skip')
    assert len(ds) == 2
    with pytest.raises(ValueError, match="needs det_file"):
        _build(tmp_path, cell_source='detections')


def test_detections_outside_the_roi_are_clipped(tmp_path):
    """A detector's boxes may stick out of the 64x48 ROI (YOLOX does not
    clip): clipped, and dropped when entirely outside."""
    _write_set(tmp_path)
    dets = [dict(image_id=1, bbox=[60, 40, 10, 10], score=0.9),
            dict(image_id=1, bbox=[70, 50, 5, 5], score=0.9),
            dict(image_id=2, bbox=[1, 2, 3, 4], score=0.5),
            dict(image_id=3, bbox=[-4, 2, 8, 4], score=0.5)]
    (tmp_path / 'dets.json').write_text(json.dumps(dets))
    ds = _build(tmp_path, cell_source='detections', det_file='dets.json')
    np.testing.assert_allclose(ds.get_data_info(0)['cell_bboxes'],
                               [[60, 40, 64, 48]])
    np.testing.assert_allclose(ds.get_data_info(2)['cell_bboxes'],
                               [[0, 2, 4, 6]])


def test_xywh_to_xyxy_checked():
    xyxy, outside, empty = xywh_to_xyxy_checked(
        np.array([[0, 0, 4, 4], [-0.5, 2, 3, 3], [-3, 0, 2, 2], [9, 9, 1, 0]]),
        10, 10)
    np.testing.assert_allclose(xyxy[:2], [[0, 0, 4, 4], [0, 2, 2.5, 5]])
    assert outside.tolist() == [False, False, True, False]
    assert empty.tolist() == [False, False, True, True]  # 3rd: clipped away


def test_cache_name_unique_across_splits():
    a = cache_name('/d/images/train/x.jpg', '/d')
    b = cache_name('/d/images/val/x.jpg', '/d')
    assert a == 'images__train__x.npz' and b == 'images__val__x.npz'
    assert cache_name('/e/x.jpg', '/d') == 'e__x.npz'
