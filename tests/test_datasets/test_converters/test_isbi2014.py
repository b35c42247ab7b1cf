"""Tests of cervdet.datasets.converters.isbi2014 on the real masks (the command
line: tests/test_tools/test_dataset_converters/test_isbi2014_to_coco.py)."""
import json

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

import cervdet.datasets.converters.isbi2014 as isbi
from cervdet.datasets.coco_checks import check_coco

OUTLINE_IMAGES = {'EDF000.png', 'EDF001.png', 'EDF002.png'}


@pytest.fixture(scope='module')
def isbi_dir(shared_data):
    return shared_data / 'isbi2014_edf'


@pytest.fixture(scope='module')
def coco(isbi_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('isbi') / 'isbi.json'
    result = isbi.convert_isbi2014(isbi_dir, out, progress=False)
    assert json.loads(out.read_text()) == result
    return result


def _boxes(coco, img):
    return [a for a in coco['annotations'] if a['image_id'] == img['id']]


def test_every_image_has_nucleus_boxes(coco, isbi_dir, tmp_path):
    assert len(coco['images']) == 12
    assert coco['categories'] == [dict(id=1, name='nucleus', supercategory='cell')]
    for img in coco['images']:
        assert (isbi_dir / img['file_name']).is_file()
        assert (img['width'], img['height']) == (1024, 1024)
        assert len(_boxes(coco, img)) > 10, img['file_name']
    ann_file = tmp_path / 'isbi.json'
    ann_file.write_text(json.dumps(coco))
    report = check_coco(ann_file, isbi_dir, check_images=True)
    assert report['ok'] and report['stats']['images_without_boxes'] == 0


def test_outline_masks_detected_and_filled(coco, isbi_dir):
    flagged = {i['file_name'] for i in coco['images'] if i['outline_mask']}
    assert flagged == OUTLINE_IMAGES
    for img in coco['images']:
        if img['file_name'] not in OUTLINE_IMAGES:
            continue
        gt = isbi.read_mask(isbi_dir / img['file_name'].replace('.png', '_GT.png'))
        filled = ndi.binary_fill_holes(gt)
        assert filled.sum() > 3 * gt.sum()  # they really are outlines
        n_cc = ndi.label(filled, structure=np.ones((3, 3)))[1]
        anns = _boxes(coco, img)
        assert abs(len(anns) - n_cc) <= 2, (img['file_name'], len(anns), n_cc)
        for a in anns:  # filled discs, not one-pixel rings
            w, h = a['bbox'][2:]
            assert a['area'] > 0.4 * w * h, a
            assert w >= 8 and h >= 8


def test_filling_keeps_box_extent(isbi_dir):
    """Filling an outline changes the area, never the box."""
    filled = isbi.convert_isbi2014(isbi_dir, None, min_area=0, progress=False)
    rings = isbi.convert_isbi2014(isbi_dir, None, min_area=0, fill='never',
                                  progress=False)
    for img_f, img_r in zip(filled['images'], rings['images']):
        if img_f['file_name'] not in OUTLINE_IMAGES:
            continue
        bf = sorted(tuple(a['bbox']) for a in _boxes(filled, img_f))
        br = sorted(tuple(a['bbox']) for a in _boxes(rings, img_r))
        assert bf == br
        ring_fill = np.median([a['area'] / (a['bbox'][2] * a['bbox'][3])
                               for a in _boxes(rings, img_r)])
        assert ring_fill < 0.35  # without filling they would be rings


def test_filled_masks_match_connected_components(coco, isbi_dir):
    for img in coco['images']:
        if img['file_name'] in OUTLINE_IMAGES:
            continue
        gt = cv2.imread(str(isbi_dir / img['file_name'].replace('.png', '_GT.png')),
                        cv2.IMREAD_UNCHANGED)
        n, _, stats, _ = cv2.connectedComponentsWithStats((gt > 0).astype(np.uint8),
                                                          connectivity=8)
        expected = sorted(tuple(s[:4]) for s in stats[1:] if s[4] >= 20)
        got = sorted(tuple(a['bbox']) for a in _boxes(coco, img))
        assert got == expected, img['file_name']


def test_min_area_and_overwrite(isbi_dir, tmp_path):
    few = isbi.convert_isbi2014(isbi_dir, None, min_area=400, progress=False)
    many = isbi.convert_isbi2014(isbi_dir, None, min_area=1, progress=False)
    assert 0 < len(few['annotations']) < len(many['annotations'])
    assert all(a['area'] >= 400 for a in few['annotations'])
    out = tmp_path / 'o.json'
    out.write_text('keep')
    with pytest.raises(FileExistsError, match='--overwrite'):
        isbi.convert_isbi2014(isbi_dir, out, progress=False)
    assert out.read_text() == 'keep'


def test_outline_detection_unit():
    mask = np.zeros((40, 40), bool)
    cv2.circle(mask.view(np.uint8), (20, 20), 10, 1, 1)
    assert isbi.is_outline_mask(mask)
    filled = isbi.fill_mask(mask)
    assert not isbi.is_outline_mask(filled)
    assert filled.sum() > 250 and np.array_equal(isbi.fill_mask(filled), filled)
    gap = mask.copy()
    gap[20, 30] = False  # one-pixel gap in the ring
    assert isbi.fill_mask(gap).sum() > 250
    cut = np.zeros((40, 40), np.uint8)
    cv2.circle(cut, (3, 20), 10, 1, 1)  # ring cut by the left image edge
    filled_cut = isbi.fill_mask(cut.astype(bool))
    assert filled_cut.sum() > 5 * cut.sum()
    assert isbi.mask_to_boxes(filled_cut, 1)[0] == isbi.mask_to_boxes(cut > 0, 1)[0]
