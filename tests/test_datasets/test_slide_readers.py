"""Slide readers (openslide, tiffslide, tifffile, plain image) on a tiny
pyramidal TIFF written by cervdet.testing.pyramidal_tiff."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from cervdet.datasets import slide_readers as sr
from cervdet.testing import pyramidal_tiff as pt

H, W = 1100, 1500
RED, BLUE = (200, 30, 40), (40, 60, 190)


def _content() -> np.ndarray:
    img = np.full((H, W, 3), 255, np.uint8)
    img[100:300, 200:500] = RED
    img[600:900, 900:1300] = BLUE
    return img


@pytest.fixture(scope='module')
def slides(tmp_path_factory):
    d = tmp_path_factory.mktemp('slides')
    img = _content()
    out = {}
    for comp in ('zlib', 'jpeg'):
        out[comp] = pt.write_pyramidal_tiff_from_array(
            d / f'slide_{comp}.tif', img, mpp=0.5, downsamples=(1, 4),
            compression=comp, tile=256)
    cv2.imwrite(str(d / 'slide.png'), img[..., ::-1])
    out['png'] = d / 'slide.png'
    return out


@pytest.mark.parametrize('backend', ['openslide', 'tiffslide', 'tifffile'])
def test_wsi_backends_read_exact_content(slides, backend):
    img = _content()
    with sr.open_slide(slides['zlib'], backend=backend) as r:
        assert r.dimensions == (W, H) and r.level_count == 2
        assert r.level_dimensions[1] == (375, 275)
        assert r.level_downsamples == pytest.approx([1., 4.])
        assert r.mpp == pytest.approx(0.5)
        reg = r.read_region(150, 80, 300, 260, 0)
        np.testing.assert_array_equal(reg, img[80:340, 150:450])
        # level 1: exact 4x4 block means of the content
        lvl1 = r.read_region(0, 0, 375, 275, 1)
        ref1 = cv2.resize(img, (375, 275), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(lvl1, ref1)
        assert lvl1[50, 100].tolist() == list(RED)
        # crossing the right/bottom border (level 1): white outside
        b = r.read_region(1400, 1000, 100, 100, 1)
        assert (b[275 - 250:] == 255).all() and (b[:, 375 - 350:] == 255).all()
        np.testing.assert_array_equal(b[:25, :25], ref1[250:, 350:])
        # crossing the top-left border at level 0
        tl = r.read_region(-20, -10, 50, 40, 0)
        assert (tl[:10] == 255).all() and (tl[:, :20] == 255).all()
        np.testing.assert_array_equal(tl[10:, 20:], img[:30, :30])
        # entirely outside
        assert (r.read_region(5000, 5000, 8, 8, 0) == 255).all()
        thumb, ds = r.thumbnail(200)
        assert max(thumb.shape[:2]) <= 200 and ds == pytest.approx(7.5)
        assert thumb[int(200 / ds), int(350 / ds)].tolist() == list(RED)


@pytest.mark.parametrize('backend', ['openslide', 'tiffslide', 'tifffile'])
def test_jpeg_slide_close_to_content(slides, backend):
    img = _content()
    with sr.open_slide(slides['jpeg'], backend=backend) as r:
        assert r.mpp == pytest.approx(0.5)
        reg = r.read_region(0, 0, W, H, 0).astype(np.int16)
        err = np.abs(reg - img)
        assert np.median(err) <= 2 and err.mean() < 4
        # square interiors (away from JPEG edge ringing) are close
        assert np.abs(reg[150:250, 250:450] - RED).max() <= 12


def test_image_reader_same_content(slides):
    img = _content()
    with sr.open_slide(slides['png']) as r:
        assert isinstance(r, sr.ImageReader) and r.mpp is None
        assert r.dimensions == (W, H)
        np.testing.assert_array_equal(r.read_region(150, 80, 300, 260),
                                      img[80:340, 150:450])
    with sr.open_slide(slides['png'], mpp=0.25) as r:
        assert r.mpp == 0.25


def test_auto_backend_order_and_given_mpp(slides, tmp_path):
    # .tif: tifffile first (about 10x faster than openslide on generic
    # pyramidal TIFFs); vendor extensions: openslide first
    with sr.open_slide(slides['zlib']) as r:
        assert isinstance(r, sr.TiffFileReader)
    svs = tmp_path / 'same.svs'
    svs.write_bytes(Path(slides['zlib']).read_bytes())
    with sr.open_slide(svs) as r:
        assert isinstance(r, sr.OpenSlideReader)
    # no resolution in the file: the given mpp fills in; file mpp wins
    p = pt.write_pyramidal_tiff_from_array(tmp_path / 'nompp.tif',
                                           _content(), mpp=None,
                                           downsamples=(1, 4),
                                           compression='zlib')
    for backend in ('openslide', 'tiffslide', 'tifffile'):
        with sr.open_slide(p, backend=backend) as r:
            assert r.mpp is None
        with sr.open_slide(p, backend=backend, mpp=0.3) as r:
            assert r.mpp == 0.3
    with sr.open_slide(slides['zlib'], backend='tifffile', mpp=0.3) as r:
        assert r.mpp == pytest.approx(0.5)


def test_mpp_from_inch_resolution(tmp_path):
    import tifffile
    p = tmp_path / 'inch.tif'
    tifffile.imwrite(p, _content(), tile=(256, 256), photometric='rgb',
                     resolution=(25400 / 0.25, 25400 / 0.25),
                     resolutionunit='INCH', metadata=None)
    assert sr._mpp_from_tiff(p) == pytest.approx(0.25)
    with sr.open_slide(p, backend='tifffile') as r:
        assert r.mpp == pytest.approx(0.25)
    for backend in ('openslide', 'tiffslide'):
        with sr.open_slide(p, backend=backend) as r:
            assert r.mpp == pytest.approx(0.25)


def test_tifffile_reader_decodes_only_overlapping_tiles(slides, monkeypatch):
    with sr.TiffFileReader(slides['zlib']) as r:
        page = r._pages[0]
        monkeypatch.setattr(type(page), 'asarray', lambda *a, **k: (
            _ for _ in ()).throw(AssertionError('whole page decoded')))
        r.read_region(10, 10, 100, 100, 0)  # inside tile (0, 0)
        assert r.decoded_segments == 1
        r.read_region(200, 200, 100, 100, 0)  # tiles (0,0) (0,1) (1,0) (1,1)
        assert r.decoded_segments == 4  # (0, 0) came from the LRU cache
        r.read_region(1300, 800, 50, 50, 0)  # tile (3, 5) only
        assert r.decoded_segments == 5
        assert len(page.dataoffsets) == 6 * 5  # of 30 tiles


def test_tifffile_reader_greyscale_strip_tiff(tmp_path):
    import tifffile
    grey = np.tile(np.arange(200, dtype=np.uint8), (120, 1))
    p = tmp_path / 'grey.tif'
    tifffile.imwrite(p, grey, rowsperstrip=16)  # untiled, small
    with sr.TiffFileReader(p) as r:
        assert r.dimensions == (200, 120) and r.level_count == 1
        reg = r.read_region(190, 0, 20, 4)
        assert reg.shape == (4, 20, 3)
        assert reg[0, :10, 0].tolist() == list(range(190, 200))
        assert (reg[:, 10:] == 255).all()
    sr.TiffFileReader.max_whole_pixels, old = 10, \
        sr.TiffFileReader.max_whole_pixels
    try:  # large strip pages: only the overlapping strips are decoded
        with sr.TiffFileReader(p) as r:
            reg = r.read_region(0, 20, 50, 10)
            assert r.decoded_segments == 1  # rows 20-29: strip 1
            assert reg[3, 7].tolist() == [7, 7, 7]
    finally:
        sr.TiffFileReader.max_whole_pixels = old


def test_reader_pickles_and_reopens(slides):
    import pickle
    r = sr.TiffFileReader(slides['zlib'])
    r.read_region(0, 0, 8, 8)
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(r2.read_region(150, 80, 60, 60),
                                  _content()[80:140, 150:210])
    r3 = pickle.loads(pickle.dumps(sr.OpenSlideReader(slides['zlib'])))
    assert r3.read_region(210, 110, 2, 2, 0)[0, 0].tolist() == list(RED)
    r.close()
    r2.close()


def test_errors(slides, tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        sr.open_slide(tmp_path / 'missing.tif')
    with pytest.raises(ValueError, match="unknown slide backend 'bioformats'"):
        sr.open_slide(slides['zlib'], backend='bioformats')
    bad = tmp_path / 'bad.svs'
    bad.write_bytes(b'not a slide at all')
    with pytest.raises(sr.SlideOpenError, match='openslide.*tiffslide.*'
                       'tifffile'):
        sr.open_slide(bad)
    with pytest.raises(sr.SlideOpenError, match='tifffile cannot read'):
        sr.TiffFileReader(bad)
    with sr.open_slide(slides['zlib'], backend='tifffile') as r:
        with pytest.raises(ValueError, match='levels 0..1'):
            r.read_region(0, 0, 4, 4, level=2)
        with pytest.raises(ValueError, match='>= 1'):
            r.read_region(0, 0, 0, 4)
