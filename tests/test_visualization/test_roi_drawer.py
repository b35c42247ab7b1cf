"""Tests of cervdet.visualization.draw_roi."""
import cv2
import numpy as np
import pytest

import cervdet.visualization  # noqa: F401
from cervdet.visualization import attention_colours, class_colours, draw_roi

CLASSES = ['NILM', 'LSIL', 'HSIL']


def _result(attention=(0.9, 0.1)):
    return dict(
        roi_class='LSIL', roi_scores=dict(NILM=0.2, LSIL=0.7, HSIL=0.1),
        cells=[dict(bbox=[20, 20, 80, 80], attention=attention[0],
                    cell_class='LSIL'),
               dict(bbox=[120, 120, 180, 180], attention=attention[1],
                    cell_class='NILM')])


def test_attention_colours():
    colours, rel = attention_colours([0.5, 0.25, 0.])
    np.testing.assert_allclose(rel, [1, 0.5, 0])
    # JET: the most attended is red (BGR), the least blue
    assert colours[0, 2] > 100 and colours[0, :2].max() < 50
    assert colours[2, 0] > 100 and colours[2, 2] < 50
    assert attention_colours(np.zeros(2))[1].tolist() == [0, 0]
    assert attention_colours(np.zeros(0))[0].shape == (0, 3)


def test_class_colours():
    assert class_colours(CLASSES, [(1, 2, 3)]) == {c: (1, 2, 3)
                                                   for c in CLASSES}
    assert len(set(class_colours(CLASSES).values())) == 3
    with pytest.raises(ValueError, match="no colour for classes \\['HSIL'\\]"):
        class_colours(CLASSES, dict(NILM=(0, 0, 0), LSIL=(1, 1, 1)))


def test_draw_roi_size_header_and_colours(shared_data):
    crop = cv2.imread(str(sorted((shared_data / 'cric_crops_bethesda' /
                                  'LSIL').glob('*.png'))[0]))
    img = np.full((200, 240, 3), 230, np.uint8)
    img[10:110, 10:110] = crop
    out = draw_roi(img, _result(), CLASSES, max_label_cells=0)
    hdr = out.shape[0] - img.shape[0]
    assert out.shape[1:] == img.shape[1:] and hdr > 0
    assert out.dtype == np.uint8
    roi = out[hdr:]
    assert (img[0] == 230).all()  # the input is not modified
    # left edge of each box: high attention red and thicker, low blue
    hi, lo = roi[50, 20], roi[150, 120]
    assert hi[2] > 100 and hi[0] < 50 and hi[1] < 50, hi  # dark red
    assert lo[0] > 100 and lo[2] < 80, lo
    assert not np.array_equal(hi, lo)
    hi_w = int((np.abs(roi[50, 15:40].astype(int) - img[50, 15:40]).sum(1)
                > 60).sum())
    lo_w = int((np.abs(roi[150, 115:140].astype(int) - 230).sum(1)
                > 60).sum())
    assert hi_w > lo_w >= 1
    # untouched far from the boxes
    np.testing.assert_array_equal(roi[195, 230], img[195, 230])
    # the header is drawn (text + colour bar), not left blank
    assert len(np.unique(out[:hdr].reshape(-1, 3), axis=0)) > 10
    # a tag with the class colour above the most attended cell only
    tagged = draw_roi(img, _result(), CLASSES, max_label_cells=1)[hdr:]
    lsil = np.array(class_colours(CLASSES)['LSIL'])
    assert (np.abs(tagged[10:20, 20:40].astype(int) - lsil).sum(-1)
            == 0).any()
    assert np.array_equal(tagged[110:120, 121:160], roi[110:120, 121:160])


def test_draw_roi_without_result_and_grey():
    img = np.zeros((64, 64), np.uint8)
    out = draw_roi(img, dict(roi_class=None, reason='no cell', cells=[]),
                   CLASSES)
    assert out.shape[1:] == (64, 3) and out.shape[0] > 64
    np.testing.assert_array_equal(out[out.shape[0] - 64:], 0)
    with pytest.raises(ValueError, match=r'\[H, W, 3\]'):
        draw_roi(np.zeros((4, 4, 4), np.uint8), _result(), CLASSES)
