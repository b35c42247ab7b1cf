"""Tissue mask, tile planning and the tile dataset of slide_tiles."""
import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cervdet.datasets import slide_readers as sr
from cervdet.datasets import slide_tiles as st
from cervdet.testing import pyramidal_tiff as pt

H, W = 1100, 1500


def _content() -> np.ndarray:
    img = np.full((H, W, 3), 250, np.uint8)
    img[100:300, 200:500] = (200, 30, 40)
    img[600:900, 900:1300] = (150, 150, 150)  # grey: darkness cue only
    return img


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiles')
    return pt.write_pyramidal_tiff_from_array(
        d / 's.tif', _content(), mpp=0.5, downsamples=(1, 4),
        compression='zlib')


def test_tissue_mask_empty_on_blank_and_covers_squares(slide, tmp_path):
    blank = np.full((H, W, 3), 245, np.uint8)
    blank += np.random.default_rng(0).integers(0, 6, blank.shape,
                                               dtype=np.uint8)
    p = pt.write_pyramidal_tiff_from_array(tmp_path / 'blank.tif', blank,
                                           downsamples=(1, 4),
                                           compression='jpeg')
    with sr.open_slide(p) as r:
        mask, ds = st.tissue_mask(r, max_side=300)
        assert not mask.any() and ds == pytest.approx(5.)
    with sr.open_slide(slide) as r:
        mask, ds = st.tissue_mask(r, max_side=300)
    assert mask.shape == (220, 300) and ds == pytest.approx(5.)
    ref = np.zeros((220, 300), bool)
    ref[20:60, 40:100] = True  # red square (saturation)
    ref[120:180, 180:260] = True  # grey square (darkness)
    assert (mask == ref).mean() > 0.99
    assert mask[20:60, 40:100].all() and mask[120:180, 180:260].all()


def test_tissue_mask_fixed_and_bad_input():
    rgb = np.full((50, 50, 3), 255, np.uint8)
    rgb[10:30, 10:30] = (230, 200, 230)  # pale stain: S ~ 33
    m = st.tissue_mask_from_rgb(rgb, method='fixed', min_saturation=20)
    assert m[10:30, 10:30].all() and m.sum() == 400
    with pytest.raises(ValueError, match='unknown tissue mask method'):
        st.tissue_mask_from_rgb(rgb, method='magic')
    with pytest.raises(ValueError, match='uint8 RGB'):
        st.tissue_mask_from_rgb(rgb[..., 0])


def test_resolve_read_scale():
    assert st.resolve_read_scale(0.25) == 1.
    assert st.resolve_read_scale(0.25, target_mpp=0.5) == 2.
    assert st.resolve_read_scale(0.25, 0.5, given_mpp=0.5) == 1.
    assert st.resolve_read_scale(None, 0.5, given_mpp=0.25) == 2.
    with pytest.raises(ValueError, match='no microns-per-pixel.*--mpp'):
        st.resolve_read_scale(None, target_mpp=0.5)
    with pytest.raises(ValueError, match='target mpp must be > 0'):
        st.resolve_read_scale(0.25, target_mpp=0)


def test_plan_tiles_geometry():
    # 1000 x 700, tiles 256 output px at 2x (512 level-0), overlap 56
    plan = st.plan_tiles((1000, 700), 256, 56, 2.)
    assert plan.stride == 400. and plan.footprint == 512.
    assert plan.grid_shape == (2, 3) and len(plan) == 6
    assert plan.origins.dtype == np.int64
    # x: 0, 400, then shifted to 1000 - 512 = 488; y: 0, 700 - 512 = 188
    assert plan.origins.tolist() == [[0, 0], [400, 0], [488, 0],
                                     [0, 188], [400, 188], [488, 188]]
    assert (plan.origins + 512 <= [1000, 700]).all()
    assert plan.edges.tolist() == [
        [False, False, True, True], [True, False, True, True],
        [True, False, False, True], [False, True, True, False],
        [True, True, True, False], [True, True, False, False]]
    assert (plan.tissue == 1).all() and plan.keep.all()
    assert plan.rows_cols[4].tolist() == [1, 1]
    # exact fit: (L - F) / S integer gives no duplicate last tile
    assert st.grid_positions(1024, 256, 256).tolist() == [0, 256, 512, 768]
    # smaller than a tile: one padded tile
    small = st.plan_tiles((100, 80), 256)
    assert small.origins.tolist() == [[0, 0]] and not small.edges.any()


def test_plan_tiles_tissue_fraction_and_keep():
    mask = np.zeros((100, 100), bool)  # downsample 10: 1000 x 1000 slide
    mask[:50, :25] = True
    plan = st.plan_tiles((1000, 1000), 500, 0, 1., mask=mask,
                         mask_downsample=10., min_tissue=0.3)
    assert plan.origins.tolist() == [[0, 0], [500, 0], [0, 500],
                                     [500, 500]]
    np.testing.assert_allclose(plan.tissue, [0.5, 0, 0, 0])
    assert plan.keep.tolist() == [True, False, False, False]
    assert plan.kept_indices.tolist() == [0]
    plan = st.plan_tiles((1000, 1000), 500, 0, 1., mask=mask,
                         mask_downsample=10., min_tissue=0.6)
    assert not plan.keep.any()
    # part of the tile outside a small image is not counted
    small = st.plan_tiles((100, 100), 500, mask=np.ones((10, 10), bool),
                          mask_downsample=10.)
    assert small.tissue.tolist() == [1.]
    with pytest.raises(ValueError, match='mask_downsample'):
        st.plan_tiles((1000, 1000), 500, mask=mask)
    with pytest.raises(ValueError, match='overlap must be in'):
        st.plan_tiles((1000, 1000), 500, 500)


def test_plan_tiles_stride():
    """A step instead of an overlap (the SSL tile extractor's grid): the
    same plan when it overlaps, gaps and no interior edge when it is
    larger than the tile."""
    a = st.plan_tiles((1000, 700), 256, 56, 2.)
    b = st.plan_tiles((1000, 700), 256, stride=200, read_downsample=2.)
    np.testing.assert_array_equal(a.origins, b.origins)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert b.overlap == 56
    gaps = st.plan_tiles((1000, 300), 100, stride=400)
    assert sorted(set(gaps.origins[:, 0].tolist())) == [0, 400, 800, 900]
    assert gaps.overlap == -300 and not gaps.edges.any()
    with pytest.raises(ValueError, match='not both'):
        st.plan_tiles((1000, 300), 100, 10, stride=50)
    with pytest.raises(ValueError, match='stride must be >= 1'):
        st.plan_tiles((1000, 300), 100, stride=0)


def test_slide_tile_dataset_items_and_dataloader(slide):
    img = _content()
    origins = np.array([[150, 80], [1200, 1000], [0, 0]], np.int64)
    ds = st.SlideTileDataset(slide, origins, tile_size=100,
                             read_downsample=4.)
    assert len(ds) == 3
    item = ds[0]
    assert item['index'] == 0 and item['origin'] == (150, 80)
    assert item['img'].shape == (100, 100, 3)
    with sr.open_slide(slide) as r:  # level 1 (4x): 100 px, no resize
        ref = r.read_region(150, 80, 100, 100, 1)
    np.testing.assert_array_equal(item['img'], ref[..., ::-1])  # BGR
    # crossing the border: white outside; level-1 of the content inside
    it1 = st.SlideTileDataset(slide, origins, 100, 4., to_bgr=False)[1]
    ref1 = cv2.resize(img, (375, 275), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(it1['img'][:25, :75], ref1[250:, 300:])
    assert (it1['img'][25:] == 255).all() and (it1['img'][:, 75:] == 255).all()
    # read at 2x: level 0 region of 200 px resized to 100 (INTER_AREA)
    it2 = st.SlideTileDataset(slide, origins, 100, 2., to_bgr=False)[0]
    ref2 = cv2.resize(img[80:280, 150:350], (100, 100),
                      interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(it2['img'], ref2)
    loader = DataLoader(ds, batch_size=2, num_workers=2,
                        collate_fn=st.collate_tiles)
    batches = list(loader)
    assert [b['index'].tolist() for b in batches] == [[0, 1], [2]]
    assert batches[0]['origin'].dtype == torch.long
    assert batches[0]['origin'].tolist() == [[150, 80], [1200, 1000]]
    np.testing.assert_array_equal(batches[0]['imgs'][0], item['img'])
    assert ds._reader is not None  # parent reader still usable
    ds.close()


def test_slide_tile_dataset_errors(slide, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match='not found'):
        st.SlideTileDataset(tmp_path / 'nope.tif', np.zeros((1, 2)), 64)
    with pytest.raises(ValueError, match=r'int64\[N, 2\]'):
        st.SlideTileDataset(slide, np.zeros((3,)), 64)
    ds = st.SlideTileDataset(slide, np.array([[7, 9]]), 64)

    def boom(*a, **k):
        raise OSError('disk gone')

    monkeypatch.setattr(ds.reader, 'read_region', boom)
    with pytest.raises(st.TileReadError,
                       match=r'origin \(7, 9\) of slide .*s\.tif.*disk gone'):
        ds[0]
