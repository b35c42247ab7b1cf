"""cervdet.datasets.ssl_tiles: the SSL tile extraction on the slide plan
(tools/ssl/extract_tiles.py is its command line)."""
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cervdet.datasets import slide_tiles
from cervdet.datasets import ssl_tiles as tiles


def test_tile_fractions_hand_computed():
    mask = np.zeros((4, 6), bool)
    mask[:2, :2] = True          # top-left tile full
    mask[2:, 2:3] = True         # half of the bottom-middle tile
    plan = slide_tiles.plan_tiles((12, 8), 4, stride=4, mask=mask,
                                  mask_downsample=2., min_tissue=0.)
    xs, ys = np.unique(plan.origins[:, 0]), np.unique(plan.origins[:, 1])
    assert xs.tolist() == [0, 4, 8] and ys.tolist() == [0, 4]
    # mask pixel = 2x2 level-0 pixels, a tile = 2x2 mask pixels
    frac = plan.tissue.reshape(plan.grid_shape)
    assert frac.tolist() == [[1., 0., 0.], [0., .5, 0.]]
    # the slide plan's border rule (one rule with slide inference): the last
    # tile is shifted inside the image (the extractor's own rule, now gone,
    # left it out: [0, 4])
    assert slide_tiles.grid_positions(11, 4, 4).tolist() == [0, 4, 7]


def test_tissue_mask_white_glass_and_stain():
    img = np.full((64, 64, 3), 245, np.uint8)
    assert not slide_tiles.tissue_mask_from_rgb(img).any()
    img[10:30, 10:30] = (150, 90, 170)   # stained (chroma 80)
    img[40:50, 40:50] = (140, 140, 140)  # dark unstained (105 below glass)
    m = slide_tiles.tissue_mask_from_rgb(img)
    assert m[10:30, 10:30].all() and m[40:50, 40:50].all()
    assert m.sum() == 20 * 20 + 10 * 10


def test_extract_real_field_refuse_and_resume(shared_data, tmp_path):
    field = shared_data / 'tct_field'
    out = tmp_path / 'tiles'
    res = tiles.extract_tiles([str(field)], out, tile_size=256,
                              min_tissue=0.3, progress=False)
    grid = (4096 // 256) * (2816 // 256)
    assert 0 < res['kept'] < grid
    assert res['kept'] + res['skipped_background'] == grid
    rows = list(csv.DictReader(open(out / 'tiles.csv')))
    assert len(rows) == res['kept']
    assert all(float(r['tissue_fraction']) >= 0.3 for r in rows)
    r0 = rows[0]
    assert r0['file'] == f"field_4096x2816_x{r0['x']}_y{r0['y']}.jpg"
    img = cv2.imread(str(out / r0['file']))
    assert img.shape == (256, 256, 3)
    ref = cv2.imread(str(field / 'field_4096x2816.jpg'))
    x, y = int(r0['x']), int(r0['y'])
    assert np.abs(img.astype(int) - ref[y:y + 256, x:x + 256]).mean() < 4
    # refuses to overwrite, resumes, then a lower threshold adds tiles
    with pytest.raises(FileExistsError, match='--resume'):
        tiles.extract_tiles([str(field)], out, progress=False)
    more = tiles.extract_tiles([str(field)], out, min_tissue=0.1,
                               resume=True, progress=False)
    assert more['existing'] == res['kept'] and more['kept'] > res['kept']
    # at most N per input, random but reproducible
    few = tiles.extract_tiles([str(field)], tmp_path / 'few', max_tiles=5,
                              progress=False)
    assert few['kept'] == 5
    assert json.loads((tmp_path / 'few' / 'tiles.json').read_text())[
        'per_source'][str(field / 'field_4096x2816.jpg')]['not_selected'] > 0


def test_extract_white_and_half_blank(tmp_path):
    rng = np.random.default_rng(0)
    white = np.clip(245 + rng.normal(0, 2, (1024, 1024, 3)), 0, 255)
    cv2.imwrite(str(tmp_path / 'white.png'), white.astype(np.uint8))
    half = white.copy()
    # stained "cells" on the left 500 px, blank glass on the right
    half[:, :500] = np.clip(rng.normal((170, 90, 150), 25, (1024, 500, 3)),
                            0, 255)
    cv2.imwrite(str(tmp_path / 'half.png'), half.astype(np.uint8))
    res = tiles.extract_tiles([str(tmp_path / 'white.png')], tmp_path / 'w',
                              tile_size=128, progress=False)
    assert res['kept'] == 0 and res['skipped_background'] == 64
    res = tiles.extract_tiles([str(tmp_path / 'half.png')], tmp_path / 'h',
                              tile_size=128, progress=False)
    assert res['kept'] == 32  # columns 0-3 (>= 116/128 tissue) of 8


class FakeSlide:
    """A 2-level slide that records reads (checks no level-0 full decode)."""

    def __init__(self, path):
        self.path = Path(path)
        self.level_dimensions = [(2048, 1024), (512, 256)]
        self.level_downsamples = [1., 4.]
        self.mpp = 0.25
        self.reads = []

    dimensions = property(lambda self: self.level_dimensions[0])
    level_count = property(lambda self: 2)

    def best_level_for_downsample(self, ds):
        return 1 if ds >= 4 else 0

    def read_region(self, x, y, w, h, level=0):
        self.reads.append((x, y, w, h, level))
        img = np.full((h, w, 3), 245, np.uint8)
        if x < 1024:  # left half stained
            img[:] = (160, 90, 160)
        return img

    def thumbnail(self, max_side):
        img = np.full((128, 256, 3), 245, np.uint8)
        img[:, :128] = (160, 90, 160)
        return img, 8.

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass


def test_wsi_path_reads_regions_at_the_requested_level(tmp_path, monkeypatch):
    """The WSI path through a stand-in reader (tifffile, openslide and
    tiffslide are not installed in the test venv)."""
    slide = FakeSlide(tmp_path / 'slide.svs')
    slide.path.write_bytes(b'')
    monkeypatch.setattr(tiles, 'open_slide',
                        lambda path, backend='auto', mpp=None: slide)
    # level 1 (4x): 128 px tiles cover 512 level-0 px -> grid 4 x 2
    res = tiles.extract_tiles([str(slide.path)], tmp_path / 'l1',
                              tile_size=128, level=1, progress=False)
    assert res['kept'] == 4 and res['skipped_background'] == 4
    assert sorted(r[:2] for r in slide.reads) == [
        (0, 0), (0, 512), (512, 0), (512, 512)]
    assert all(r[2:] == (128, 128, 1) for r in slide.reads)
    names = sorted(p.name for p in (tmp_path / 'l1').glob('*.jpg'))
    assert names[0] == 'slide_x0_y0.jpg' and 'slide_x512_y512.jpg' in names
    # --mpp 0.5 on a 0.25 mpp slide: 2x, read at level 0 and resized
    slide.reads.clear()
    res = tiles.extract_tiles([str(slide.path)], tmp_path / 'mpp',
                              tile_size=128, mpp=0.5, progress=False)
    assert res['kept'] == 4 * 4  # 8 x 4 grid of 256 px, left half kept
    assert {r[2:] for r in slide.reads} == {(256, 256, 0)}
    assert cv2.imread(str(tmp_path / 'mpp' / 'slide_x0_y0.jpg')).shape == \
        (128, 128, 3)
