"""Tests of cervdet.datasets.coco_checks on hand-made and real files (the
command line: tests/test_tools/test_dataset_converters/test_check_coco.py)."""
import copy
import json

import cv2
import numpy as np
import pytest

import cervdet.datasets.coco_checks as cc

CLEAN = dict(
    images=[dict(id=1, file_name='a.jpg', width=64, height=48),
            dict(id=2, file_name='b.png', width=64, height=48),
            dict(id=3, file_name='c.jpg', width=64, height=48)],
    annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 2, 30, 20], area=600,
                      iscrowd=0),
                 dict(id=2, image_id=1, category_id=2, bbox=[0, 0, 64, 48], area=3072,
                      iscrowd=0),
                 dict(id=3, image_id=2, category_id=2, bbox=[40.5, 30.5, 23.5, 17.5],
                      area=10, iscrowd=0)],
    categories=[dict(id=1, name='HSIL'), dict(id=2, name='LSIL')])


@pytest.fixture
def dataset(tmp_path):
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a.jpg', 'b.png', 'c.jpg'):  # noise: JPEG data outweighs its header
        cv2.imwrite(str(img_dir / name), rng.integers(0, 256, (48, 64, 3), np.uint8))
    return tmp_path, img_dir


def _check(tmp_path, img_dir, coco, **kw):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(coco))
    return cc.check_coco(ann, img_dir, **kw)


def test_clean_file_passes(dataset):
    tmp_path, img_dir = dataset
    report = _check(tmp_path, img_dir, CLEAN, check_images=True)
    assert report['ok'] and report['errors'] == {} and report['warnings'] == {}
    assert report['stats'] == dict(images=3, annotations=3, categories=2,
                                   images_without_boxes=1,
                                   boxes_per_class={'HSIL': 1, 'LSIL': 2})


@pytest.mark.parametrize('code,mutate', [
    ('missing_image', lambda c: c['images'][0].update(file_name='gone.jpg')),
    ('bbox_outside_image', lambda c: c['annotations'][0].update(bbox=[50, 40, 30, 30])),
    ('bbox_outside_image', lambda c: c['annotations'][0].update(bbox=[-5, 0, 10, 10])),
    ('degenerate_bbox', lambda c: c['annotations'][0].update(bbox=[5, 5, 0, 10])),
    ('degenerate_bbox', lambda c: c['annotations'][0].update(bbox=[5, 5, 10, -1])),
    ('bad_bbox', lambda c: c['annotations'][0].update(bbox=[5, 5, 10])),
    ('unknown_category_id', lambda c: c['annotations'][0].update(category_id=99)),
    ('unknown_image_id', lambda c: c['annotations'][0].update(image_id=42)),
    ('duplicate_ann_id', lambda c: c['annotations'][1].update(id=1)),
    ('duplicate_image_id', lambda c: c['images'][1].update(id=1)),
    ('size_mismatch', lambda c: c['images'][0].update(width=640)),
    ('missing_key', lambda c: c['annotations'][0].pop('bbox')),
])
def test_each_problem_detected(dataset, code, mutate):
    tmp_path, img_dir = dataset
    coco = copy.deepcopy(CLEAN)
    mutate(coco)
    report = _check(tmp_path, img_dir, coco)
    assert not report['ok']
    assert report['errors'].get(code) == 1, report['errors']
    example = report['examples'][code][0]
    assert example  # names the image / annotation concerned


def test_examples_name_files_and_ids(dataset):
    tmp_path, img_dir = dataset
    coco = copy.deepcopy(CLEAN)
    coco['annotations'][2]['bbox'] = [60, 40, 30, 30]
    report = _check(tmp_path, img_dir, coco)
    ex = report['examples']['bbox_outside_image'][0]
    assert ex['ann_id'] == 3 and ex['file_name'] == 'b.png'
    assert ex['image_wh'] == [64, 48]
    text = cc.format_report(report, 'ann.json')
    assert 'box outside the image: 1' in text and 'b.png' in text and 'fix:' in text


def test_tolerance(dataset):
    tmp_path, img_dir = dataset
    coco = copy.deepcopy(CLEAN)
    coco['annotations'][0]['bbox'] = [-0.5, 0, 64.8, 48.5]
    assert _check(tmp_path, img_dir, coco)['ok']
    strict = _check(tmp_path, img_dir, coco, tolerance=0.1)
    assert strict['errors'] == {'bbox_outside_image': 1}


def test_corrupt_images(dataset):
    tmp_path, img_dir = dataset
    (img_dir / 'c.jpg').write_bytes(b'not an image at all')
    data = (img_dir / 'a.jpg').read_bytes()
    (img_dir / 'a.jpg').write_bytes(data[:len(data) * 2 // 3])  # truncated JPEG
    quick = _check(tmp_path, img_dir, CLEAN)
    assert quick['errors'] == {'unreadable_image': 1}  # header check: c.jpg only
    assert quick['examples']['unreadable_image'][0]['file_name'] == 'c.jpg'
    full = _check(tmp_path, img_dir, CLEAN, check_images=True)
    assert full['errors'] == {'unreadable_image': 2}


def test_empty_and_invalid_files(dataset):
    tmp_path, img_dir = dataset
    empty = _check(tmp_path, img_dir, dict(images=[], annotations=[], categories=[]))
    assert not empty['ok'] and 'empty_file' in empty['errors']
    (tmp_path / 'bad.json').write_text('{"images": [')
    bad = cc.check_coco(tmp_path / 'bad.json', img_dir)
    assert bad['errors'] == {'invalid_json': 1}
    no_keys = _check(tmp_path, img_dir, {})
    assert {'empty_file', 'missing_key'} <= set(no_keys['errors'])


def test_duplicate_file_name_is_a_warning(dataset):
    tmp_path, img_dir = dataset
    coco = copy.deepcopy(CLEAN)
    coco['images'][1]['file_name'] = 'a.jpg'
    report = _check(tmp_path, img_dir, coco)
    assert report['ok'] and report['warnings'] == {'duplicate_file_name': 1}


def test_classes(dataset):
    tmp_path, img_dir = dataset
    report = _check(tmp_path, img_dir, CLEAN, classes=('HSIL', 'ASC-US'))
    assert not report['ok'] and report['errors'] == {'unknown_class': 1}
    assert report['examples']['unknown_class'] == [dict(name='LSIL', category_id=2)]
    assert _check(tmp_path, img_dir, CLEAN, classes=('LSIL', 'HSIL'))['ok']
    none = _check(tmp_path, img_dir, CLEAN, classes=('SCC', ))
    assert none['errors'] == {'unknown_class': 2, 'no_known_class': 1}
    # an already loaded dict gives the same report as its file
    assert cc.check_coco(copy.deepcopy(CLEAN), img_dir, classes=('SCC', )) == none


def test_real_ccagt_file(shared_data):
    ann = shared_data / 'ccagt_sample' / 'CCAgT_COCO_OD.json'
    img_dir = shared_data / 'ccagt_sample' / 'images'
    report = cc.check_coco(ann, img_dir, file_suffix='.jpg', check_images=True)
    assert report['ok'], report['errors']
    assert report['stats']['images'] == 7 and report['stats']['annotations'] == 231
    assert sum(report['stats']['boxes_per_class'].values()) == 231
    # without the suffix every file is missing, and the report says how to fix it
    raw = cc.check_coco(ann, img_dir)
    assert raw['errors'] == {'missing_image': 7}
    assert '--file-suffix .jpg' in raw['examples']['missing_image'][0]['hint']
