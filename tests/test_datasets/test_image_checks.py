"""Images whose real size differs from their annotation, unreadable images
and a wrong data_root stop with the file, both sizes and the fix."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from cervdet.datasets import CervicalCocoDataset, CocoAnnotationError
from cervdet.datasets.image_checks import (
    ImageHeaderError,
    check_dataset_images,
    image_header_size,
    image_problem,
)
from test_datasets.test_cervical_coco import PIPELINE, ann, build, make_coco


def test_header_size_applies_exif_rotation(tmp_path):
    img = Image.fromarray(np.zeros((30, 50, 3), np.uint8))  # 50 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: decoders return 30 wide, 50 high
    img.save(tmp_path / 'r.jpg', exif=exif)
    img.save(tmp_path / 'p.jpg')
    assert image_header_size(str(tmp_path / 'r.jpg')) == (30, 50)
    assert image_header_size(str(tmp_path / 'p.jpg')) == (50, 30)
    # OpenCV (mmcv's decoder) agrees
    assert cv2.imread(str(tmp_path / 'r.jpg')).shape[:2] == (50, 30)
    assert image_problem(str(tmp_path / 'r.jpg'), 30, 50) is None


def test_first_load_of_a_resized_image_stops(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [2, 2, 10, 10]),
                                              ann(2, 1, 1, [5, 5, 20, 20])])
    # img1 was re-exported at another size after annotation
    cv2.imwrite(os.path.join(img_dir, 'img1.png'),
                np.full((96, 128, 3), 200, np.uint8))
    ds = build(path, img_dir)
    assert ds[0]['data_samples'].gt_instances.bboxes.shape == (1, 4)
    with pytest.raises(CocoAnnotationError) as e:
        ds[1]
    msg = str(e.value)
    assert 'img1.png is 128x96 px' in msg and 'says 64x48' in msg
    assert 'loss_bbox = inf' in msg and 'check_coco.py' in msg
    # the whole set: header check names it as well
    with pytest.raises(ImageHeaderError, match=r'1 of the 3 val images'):
        check_dataset_images(ds, split='val')


def test_unreadable_image_named(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [2, 2, 10, 10])])
    with open(os.path.join(img_dir, 'img2.png'), 'wb') as f:
        f.write(b'\x00not an image' * 10)
    ds = build(path, img_dir)
    with pytest.raises(ImageHeaderError) as e:
        check_dataset_images(ds, split='test')
    assert 'img2.png is not a readable image' in str(e.value)
    assert '1 of the 3 test images' in str(e.value)


def test_good_set_passes_and_counts(tmp_path):
    path, img_dir = make_coco(str(tmp_path), [ann(1, 0, 1, [2, 2, 10, 10])])
    ds = build(path, img_dir)
    assert check_dataset_images(ds) == 3


def test_relative_data_root_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        CervicalCocoDataset(data_root='data/cervical-mosaic-bethesda-512/',
                            ann_file='annotations/train.json',
                            data_prefix=dict(img='images/train/'),
                            pipeline=PIPELINE)
    msg = str(e.value)
    assert 'annotation file data/cervical-mosaic-bethesda-512/annotations/' \
        'train.json not found' in msg
    assert f'is relative, so it is read from the current folder {tmp_path}' \
        in msg
    assert 'build_mosaic.py' in msg and 'data_root=' in msg
