import json
import os.path as osp

import cv2
import numpy as np
import pytest

from cervdet.datasets import BETHESDA_CLASSES, CervicalCocoDataset, CocoAnnotationError

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs')
]


def _categories(names=BETHESDA_CLASSES):
    return [dict(id=i + 1, name=n) for i, n in enumerate(names)]


def make_coco(root, anns, images=None, categories=None, write_images=True):
    """Write a COCO file with 64x48 images img0..img2 under root/images."""
    img_dir = osp.join(root, 'images')
    if images is None:
        images = [
            dict(id=i, file_name=f'img{i}.png', width=64, height=48)
            for i in range(3)
        ]
    if write_images:
        import os
        os.makedirs(img_dir, exist_ok=True)
        for im in images:
            cv2.imwrite(
                osp.join(img_dir, im['file_name']),
                np.full((im['height'], im['width'], 3), 200, np.uint8))
    coco = dict(
        images=images,
        annotations=anns,
        categories=_categories() if categories is None else categories)
    path = osp.join(root, 'ann.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path, img_dir + '/'


def ann(i, img, cat, bbox):
    return dict(
        id=i,
        image_id=img,
        category_id=cat,
        bbox=bbox,
        area=bbox[2] * bbox[3] if len(bbox) == 4 else 0,
        iscrowd=0)


def build(path, img_dir, **kwargs):
    return CervicalCocoDataset(
        ann_file=path,
        data_prefix=dict(img=img_dir),
        pipeline=PIPELINE,
        **kwargs)


def test_negatives_are_kept_and_train(tmp_path):
    path, img_dir = make_coco(
        str(tmp_path),
        [ann(1, 0, 1, [2, 3, 10, 12]),
         ann(2, 0, 4, [20, 20, 30, 20])])
    ds = build(path, img_dir)
    assert len(ds) == 3
    infos = {ds.get_data_info(i)['img_id']: ds.get_data_info(i)
             for i in range(3)}
    assert len(infos[0]['instances']) == 2
    assert infos[1]['instances'] == [] and infos[2]['instances'] == []
    # category ids map to the Bethesda label order
    assert [i['bbox_label'] for i in infos[0]['instances']] == [0, 3]
    assert infos[0]['instances'][0]['bbox'] == [2, 3, 12, 15]
    # a negative image goes through the training pipeline with zero boxes
    neg = next(i for i in range(3) if ds.get_data_info(i)['img_id'] == 1)
    packed = ds[neg]
    assert packed['data_samples'].gt_instances.bboxes.shape == (0, 4)
    assert packed['inputs'].shape == (3, 48, 64)
    assert ds.metainfo['classes'] == BETHESDA_CLASSES
    assert len(ds.metainfo['palette']) == len(BETHESDA_CLASSES)


@pytest.mark.parametrize(
    'anns, categories, expected',
    [
        ([ann(1, 0, 1, [60, 3, 10, 12])], None, 'bbox_outside_image'),
        ([ann(1, 0, 1, [-5, 3, 10, 12])], None, 'bbox_outside_image'),
        ([ann(1, 0, 1, [5, 3, 0, 12])], None, 'degenerate_bbox'),
        ([ann(1, 0, 1, [5, 3, 10])], None, 'bad_bbox'),
        ([ann(1, 0, 9, [5, 3, 10, 12])], None, 'unknown_category_id'),
        ([ann(1, 7, 1, [5, 3, 10, 12])], None, 'unknown_image_id'),
        ([ann(1, 0, 1, [5, 3, 10, 12]),
          ann(1, 1, 1, [5, 3, 10, 12])], None, 'duplicate_ann_id'),
        ([ann(1, 0, 1, [5, 3, 10, 12])],
         _categories(BETHESDA_CLASSES + ('Koilocyte', )), 'Koilocyte'),
    ])
def test_bad_annotations_raise_clear_errors(tmp_path, anns, categories,
                                            expected):
    path, img_dir = make_coco(str(tmp_path), anns, categories=categories)
    with pytest.raises(CocoAnnotationError) as e:
        build(path, img_dir)
    msg = str(e.value)
    assert expected in msg
    assert path in msg  # names the file
    assert 'Fix:' in msg  # and says what to do


def test_box_within_tolerance_is_accepted(tmp_path):
    path, img_dir = make_coco(str(tmp_path),
                              [ann(1, 0, 1, [54.5, 38.5, 10, 10])])
    assert len(build(path, img_dir)) == 3


def test_empty_file(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [], images=[])
    with pytest.raises(CocoAnnotationError, match='empty_file'):
        build(path, img_dir)


def test_invalid_json(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_text('{"images": [')
    with pytest.raises(CocoAnnotationError, match='not valid JSON'):
        build(str(path), str(tmp_path))


def test_missing_image(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [5, 3, 10, 12])])
    (tmp_path / 'images' / 'img2.png').unlink()
    with pytest.raises(CocoAnnotationError) as e:
        build(path, img_dir)
    assert 'missing_image' in str(e.value) and 'img2.png' in str(e.value)


def test_corrupt_image_names_the_file(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [5, 3, 10, 12])])
    (tmp_path / 'images' / 'img1.png').write_bytes(b'not a png at all')
    ds = build(path, img_dir)
    idx = next(i for i in range(3) if ds.get_data_info(i)['img_id'] == 1)
    with pytest.raises(CocoAnnotationError) as e:
        ds[idx]
    assert 'img1.png' in str(e.value) and 'cannot be decoded' in str(e.value)


def test_duplicate_file_name_is_only_a_warning(tmp_path):
    images = [dict(id=i, file_name='img0.png', width=64, height=48)
              for i in range(2)]
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [5, 3, 10, 12])],
                              images=images)
    assert len(build(path, img_dir)) == 2


def test_unknown_classes_ignore_keeps_known(tmp_path):
    cats = _categories(BETHESDA_CLASSES + ('Koilocyte', ))
    path, img_dir = make_coco(
        str(tmp_path),
        [ann(1, 0, 6, [5, 3, 10, 12]),
         ann(2, 0, 3, [20, 3, 10, 12])],
        categories=cats)
    ds = build(path, img_dir, unknown_classes='ignore')
    info = next(ds.get_data_info(i) for i in range(3)
                if ds.get_data_info(i)['img_id'] == 0)
    assert [i['bbox_label'] for i in info['instances']] == [2]


def test_real_ccagt_file(shared_data):
    root = shared_data / 'ccagt_sample'
    with open(root / 'CCAgT_COCO_OD.json') as f:
        classes = tuple(c['name'] for c in json.load(f)['categories'])
    ds = CervicalCocoDataset(
        ann_file=str(root / 'CCAgT_COCO_OD.json'),
        data_prefix=dict(img=str(root / 'images') + '/'),
        metainfo=dict(classes=classes),
        file_suffix='.jpg',
        pipeline=PIPELINE)
    assert len(ds) == 7
    assert sum(len(ds.get_data_info(i)['instances'])
               for i in range(7)) == 231
    sample = ds[0]
    assert sample['inputs'].shape[1:] == (1200, 1600)
    # without the suffix the files are reported missing
    with pytest.raises(CocoAnnotationError, match='missing_image'):
        CervicalCocoDataset(
            ann_file=str(root / 'CCAgT_COCO_OD.json'),
            data_prefix=dict(img=str(root / 'images') + '/'),
            metainfo=dict(classes=classes),
            pipeline=PIPELINE)
