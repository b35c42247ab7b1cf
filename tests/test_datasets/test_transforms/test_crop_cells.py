"""Tests of cervdet.datasets.transforms.CropCells on hand-made images."""
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import TRANSFORMS

from cervdet.datasets.transforms import CropCells, crop_and_resize, expand_boxes


def _image():
    """64x64 BGR image: grey, a red square [10, 40) x [20, 50) (x, y)."""
    img = np.full((64, 64, 3), 128, np.uint8)
    img[20:50, 10:40] = (0, 0, 255)
    return img


def test_identity_crop_is_exact():
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    out = crop_and_resize(img, np.array([[5, 3, 37, 35]]), 32)
    assert out.shape == (1, 3, 32, 32) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], img[3:35, 5:37].transpose(2, 0, 1))


def test_crop_inside_square_is_square_colour():
    out = crop_and_resize(_image(), np.array([[15, 25, 35, 45]], np.float32),
                          224)
    assert out.shape == (1, 3, 224, 224)
    assert (out[0, 0] == 0).all() and (out[0, 1] == 0).all()
    assert (out[0, 2] == 255).all()


def test_downscaled_square_and_border():
    # box = square plus 10 grey pixels each side, shrunk 50 -> 25 px
    out = crop_and_resize(_image(), np.array([[0, 10, 50, 60]]), 25)[0]
    # square covers output [5, 20) both ways; well inside it is pure red
    assert (out[2, 6:19, 6:19] == 255).all() and (out[0, 6:19, 6:19] == 0).all()
    assert (out[:, :4, :] == 128).all()  # top band: grey


def test_partly_outside_box_is_padded():
    img = np.full((32, 32, 3), 50, np.uint8)
    out = crop_and_resize(img, np.array([[-16, -16, 16, 16]]), 32,
                          pad_value=7)[0]  # 1 px per output pixel
    assert (out[:, :16, :] == 7).all() and (out[:, :, :16] == 7).all()
    assert (out[:, 16:, 16:] == 50).all()


def test_many_boxes_one_call_and_empty():
    img = _image()
    boxes = np.array([[15, 25, 35, 45], [45, 0, 60, 15], [0, 0, 8, 8]])
    out = crop_and_resize(img, boxes, 16)
    assert out.shape == (3, 3, 16, 16)
    assert (out[0, 2] == 255).all() and (out[1] == 128).all()
    assert crop_and_resize(img, np.zeros((0, 4)), 16).shape == (0, 3, 16, 16)


def test_expand_boxes_context():
    np.testing.assert_allclose(expand_boxes(np.array([[10, 20, 30, 60]]), 0.1),
                               [[8, 16, 32, 64]])


def test_transform_registered_and_keys():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        t = TRANSFORMS.build(dict(type='CropCells', size=8, context=0.0))
    assert isinstance(t, CropCells)
    res = t(dict(img=_image(), cell_bboxes=np.array([[15, 25, 35, 45]],
                                                    np.float32)))
    assert res['cell_imgs'].shape == (1, 3, 8, 8) and 'img' not in res
    assert (res['cell_imgs'][0, 2] == 255).all()
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        t(dict(cell_bboxes=np.zeros((1, 4), np.float32)))
