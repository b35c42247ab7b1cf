"""Tests of cervdet.datasets.converters.voc on the real VOC sample (the command
line: tests/test_tools/test_dataset_converters/test_voc_to_coco.py)."""
import json

import cv2
import numpy as np
import pytest

import cervdet.datasets.converters.voc as voc
from cervdet.datasets.coco_checks import check_coco

XML_NAME = 'H-CV 2100035-130007.xml'


@pytest.fixture(scope='module')
def voc_dir(shared_data):
    return shared_data / 'papsmear_voc'


def test_real_sample(voc_dir, tmp_path):
    out = tmp_path / 'voc.json'
    coco = voc.convert_voc([voc_dir], out, progress=False)
    assert json.loads(out.read_text()) == coco
    assert coco['images'] == [dict(id=1, file_name='H-CV 2100035-130007.jpg',
                                   width=320, height=240)]
    names = {c['id']: c['name'] for c in coco['categories']}
    assert sorted(names.values()) == ['HSIL', 'LSIL', 'Normal']
    assert len(coco['annotations']) == 15
    counts = {n: sum(names[a['category_id']] == n for a in coco['annotations'])
              for n in names.values()}
    assert counts == {'HSIL': 11, 'LSIL': 3, 'Normal': 1}
    first = coco['annotations'][0]  # <xmin>246 <ymin>56 <xmax>316 <ymax>132
    assert names[first['category_id']] == 'Normal'
    assert first['bbox'] == [246, 56, 70, 76] and first['area'] == 70 * 76
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240
    report = check_coco(out, voc_dir, check_images=True)
    assert report['ok'], report


def test_classes_order_and_file_list(voc_dir):
    coco = voc.convert_voc([voc_dir / XML_NAME], classes=['Normal', 'LSIL', 'HSIL'],
                           progress=False)
    assert [(c['id'], c['name']) for c in coco['categories']] == [
        (1, 'Normal'), (2, 'LSIL'), (3, 'HSIL')]
    assert coco['annotations'][0]['category_id'] == 1
    # an extra (unused) class is allowed and keeps its id
    coco = voc.convert_voc([voc_dir / XML_NAME],
                           classes=['ASC-US', 'Normal', 'LSIL', 'HSIL'], progress=False)
    assert {a['category_id'] for a in coco['annotations']} == {2, 3, 4}


def test_unknown_class_is_a_clear_error(voc_dir):
    with pytest.raises(voc.VOCFormatError) as err:
        voc.convert_voc([voc_dir], classes=['Normal', 'LSIL'], progress=False)
    msg = str(err.value)
    assert XML_NAME in msg and "'HSIL'" in msg and 'object #' in msg
    assert 'Add it to --classes' in msg


def _write_xml(path, filename, objects, size=(64, 48)):
    objs = ''.join(
        f'<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox>'
        f'<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax>'
        f'</bndbox></object>' for n, b, d in objects)
    size_xml = (f'<size><width>{size[0]}</width><height>{size[1]}</height>'
                f'<depth>3</depth></size>' if size else '')
    path.write_text(f'<annotation><filename>{filename}</filename>{size_xml}'
                    f'{objs}</annotation>')


def test_difficult_missing_size_and_img_dir(tmp_path):
    ann_dir, img_dir = tmp_path / 'Annotations', tmp_path / 'JPEGImages'
    ann_dir.mkdir()
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / 'a.jpg'), np.full((48, 64, 3), 200, np.uint8))
    _write_xml(ann_dir / 'a.xml', 'a.jpg',
               [('HSIL', (1, 2, 30, 40), False), ('LSIL', (5, 5, 20, 20), True)],
               size=None)  # no <size>: read from the image
    coco = voc.convert_voc([ann_dir], img_dir=img_dir, progress=False)
    assert coco['images'][0]['width'] == 64 and coco['images'][0]['height'] == 48
    assert [a['iscrowd'] for a in coco['annotations']] == [0, 1]
    skip = voc.convert_voc([ann_dir], img_dir=img_dir, difficult='skip', progress=False)
    assert len(skip['annotations']) == 1
    keep = voc.convert_voc([ann_dir], img_dir=img_dir, difficult='keep', progress=False)
    assert [a['iscrowd'] for a in keep['annotations']] == [0, 0]
    with pytest.raises(FileNotFoundError, match='--img-dir'):
        voc.convert_voc([ann_dir], img_dir=tmp_path / 'nowhere', progress=False)


def test_refuses_to_overwrite(voc_dir, tmp_path):
    out = tmp_path / 'voc.json'
    out.write_text('mine')
    with pytest.raises(FileExistsError):
        voc.convert_voc([voc_dir], out, progress=False)
    assert out.read_text() == 'mine'
    coco = voc.convert_voc([voc_dir], out, overwrite=True, progress=False)
    assert len(json.loads(out.read_text())['annotations']) == 15 == len(
        coco['annotations'])
