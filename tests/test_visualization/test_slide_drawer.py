"""Tests of cervdet.visualization.slide_drawer (palette, gallery,
overview)."""
import time

import cv2
import numpy as np
import pytest

from cervdet.datasets.slide_readers import ImageReader, open_slide
from cervdet.visualization.slide_drawer import (
    DEFAULT_SLIDE_PALETTE,
    draw_gallery,
    draw_overview,
    slide_palette,
)

CLASSES = ['NILM', 'ASC-US', 'LSIL', 'ASC-H', 'HSIL', 'SCC']


def test_palette():
    pal = slide_palette(CLASSES)
    assert pal.shape == (6, 3) and pal.dtype == np.uint8
    assert len({tuple(c) for c in pal.tolist()}) == 6
    assert pal.tolist() == [list(c) for c in DEFAULT_SLIDE_PALETTE[:6]]
    many = slide_palette([f'c{i}' for i in range(30)])
    assert len({tuple(c) for c in many.tolist()}) == 30
    np.testing.assert_array_equal(many, slide_palette(
        [f'c{i}' for i in range(30)]))  # deterministic
    custom = slide_palette(['a', 'b'], {'a': (1, 2, 3), 'b': (4, 5, 6)})
    assert custom.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match='no colour'):
        slide_palette(['a', 'b'], {'a': (1, 2, 3)})


# ---------------------------------------------------------------- pictures
def _field(tmp_path):
    """A white 'slide' with uniformly coloured cells; returns reader, dets,
    fill colours."""
    img = np.full((600, 900, 3), 255, np.uint8)
    fills = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (120, 60, 0)]
    boxes = np.array([[100, 100, 140, 150], [400, 300, 460, 340],
                      [700, 80, 730, 120], [50, 500, 100, 560]], np.float32)
    for (x1, y1, x2, y2), c in zip(boxes.astype(int), fills):
        img[y1:y2, x1:x2] = c
    path = tmp_path / 'field.png'
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    dets = dict(bboxes=boxes, scores=np.array([0.5, 0.9, 0.7, 0.2],
                                              np.float32),
                labels=np.array([0, 4, 5, 1]))
    return ImageReader(path), dets, fills


def test_gallery(tmp_path):
    reader, dets, fills = _field(tmp_path)
    pal = slide_palette(CLASSES)
    g = draw_gallery(reader, dets, CLASSES, top_n=3, crop_size=96, cols=2)
    cap = max(14, int(round(96 * 0.16)))
    assert g.dtype == np.uint8 and g.shape == (2 * (96 + cap), 2 * 96, 3)
    # rank 1 = score 0.9 (box 1, HSIL); rank 2 = box 2 (SCC); rank 3 = box 0
    for rank, i in enumerate([1, 2, 0]):
        r, c = divmod(rank, 2)
        y0, x0 = r * (96 + cap), c * 96
        assert g[y0 + 48, x0 + 48].tolist() == list(fills[i])  # the cell
        assert g[y0, x0].tolist() == pal[dets['labels'][i]].tolist()  # frame
        assert g[y0 + 96 + 1, x0 + 1].tolist() == \
            pal[dets['labels'][i]].tolist()  # caption bar
    # the empty 4th slot stays white
    assert (g[96 + cap:, 96:] == 255).all()
    # the caption has text (not a uniform bar)
    bar = g[96:96 + cap, :96]
    assert len(np.unique(bar.reshape(-1, 3), axis=0)) > 2
    one = draw_gallery(reader, dets, CLASSES, top_n=10, crop_size=64, cols=5)
    assert one.shape[1] == 4 * 64  # 4 cells: one row of 4
    none = draw_gallery(reader, {k: v[:0] for k, v in dets.items()}, CLASSES)
    assert none.ndim == 3 and none.dtype == np.uint8
    assert (none < 128).any() and (none == 255).any()  # "no detections"


def test_overview_markers_and_highlight(tmp_path):
    reader, dets, fills = _field(tmp_path)
    pal = slide_palette(CLASSES)
    ov, ds = draw_overview(reader, dets, CLASSES, max_side=450,
                           top_n_highlight=1)
    assert ds == pytest.approx(2.) and ov.shape == (300, 450, 3)
    # box 3 (not highlighted): marker ring at its centre +- half-side
    x1, y1, x2, y2 = dets['bboxes'][3] / ds
    cx, cy = int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2))
    half = int(np.clip(round(max(x2 - x1, y2 - y1) / 2), 2, 6))
    for dx, dy in [(-half, 0), (half, 0), (0, -half), (0, half)]:
        assert ov[cy + dy, cx + dx].tolist() == pal[1].tolist()
    assert ov[cy, cx].tolist() != pal[1].tolist()  # hollow
    # the best box (1, HSIL) is highlighted with its class colour
    x1, y1, x2, y2 = dets['bboxes'][1] / ds
    region = ov[int(y1) - 15:int(y2) + 15, int(x1) - 15:int(x2) + 15]
    hit = (region == pal[4]).all(-1)
    assert hit.sum() > 40
    assert (region == 0).all(-1).sum() > 20  # black outline of the highlight
    # tissue mask outline
    mask = np.zeros((60, 90), bool)
    mask[10:50, 20:70] = True  # mask at 10 level-0 px per px
    ov2, _ = draw_overview(reader, dets, CLASSES, max_side=450, mask=mask,
                           mask_downsample=10.)
    blue = (ov2 == (0, 90, 255)).all(-1)
    ys, xs = np.nonzero(blue)
    assert blue.sum() > 100
    assert xs.min() == 100 and ys.min() == 50  # 20 * 10 / 2, 10 * 10 / 2
    assert xs.max() == 349 and ys.max() == 249
    empty, _ = draw_overview(reader, {k: v[:0] for k, v in dets.items()},
                             CLASSES, max_side=450)
    np.testing.assert_array_equal(empty, reader.thumbnail(450)[0])


def test_overview_1e5_boxes_fast(tmp_path):
    reader, _, _ = _field(tmp_path)
    rng = np.random.default_rng(0)
    n = 100000
    xy = rng.uniform(0, 880, (n, 2))
    dets = dict(bboxes=np.concatenate([xy, xy + 20], 1).astype(np.float32),
                scores=rng.random(n).astype(np.float32),
                labels=rng.integers(0, 6, n))
    t = time.time()
    ov, _ = draw_overview(reader, dets, CLASSES, max_side=900)
    assert time.time() - t < 5
    assert ov.shape == (600, 900, 3)


@pytest.mark.parametrize('backend', ['openslide', 'tiffslide'])
def test_gallery_overview_on_pyramidal_tiff(tmp_path, backend):
    """A tiny tiled pyramidal TIFF: crops at the slide corner read white
    outside the slide; the overview uses the coarse level."""
    import tifffile
    img = np.full((1024, 1536, 3), 230, np.uint8)
    img[:40, :40] = (200, 0, 0)
    path = tmp_path / 'slide.tif'
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), photometric='rgb',
                 resolution=(1e4 / 0.25, 1e4 / 0.25),
                 resolutionunit='CENTIMETER')
        tw.write(img[::4, ::4], tile=(256, 256), photometric='rgb',
                 subfiletype=1)
    dets = dict(bboxes=np.array([[0, 0, 40, 40]], np.float32),
                scores=np.array([0.9], np.float32), labels=np.array([2]))
    with open_slide(path, backend=backend) as reader:
        assert reader.level_count == 2
        g = draw_gallery(reader, dets, CLASSES, crop_size=64)
        assert g.shape == (64 + 14, 64, 3)
        assert g[32, 32].tolist() == [200, 0, 0]  # the cell
        assert g[5, 5].tolist() == [255, 255, 255]  # outside the slide
        ov, ds = draw_overview(reader, dets, CLASSES, max_side=512)
        assert ov.shape == (341, 512, 3) and ds == pytest.approx(3.)
        assert (ov == slide_palette(CLASSES)[2]).all(-1).any()
