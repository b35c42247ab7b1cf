"""cervdet.testing.pyramidal_tiff: the bounded-memory pyramidal TIFF writer
(read back with cervdet's tifffile reader)."""
import numpy as np
import pytest

from cervdet.datasets import slide_readers as sr
from cervdet.testing import pyramidal_tiff as pt


def test_pyramidal_writer_bounded_calls_and_errors(tmp_path):
    calls = []

    def tile_fn(y, x, h, w):
        calls.append((y, x, h, w))
        return None if x > 600 else np.full((h, w, 3), 100, np.uint8)

    p = pt.write_pyramidal_tiff(tmp_path / 's.tif', 1000, 1300, tile_fn,
                                downsamples=(1, 4, 16), tile=128,
                                compression='zlib', chunk_px=256)
    assert max(h * w for _, _, h, w in calls) <= 256 * 256
    assert all(y + h <= 1000 and x + w <= 1300 for y, x, h, w in calls)
    with sr.TiffFileReader(p) as r:
        assert r.level_dimensions == [(1300, 1000), (325, 250), (82, 63)]
        lvl2 = r.read_region(0, 0, 82, 63, 2)
        assert lvl2[10, 10].tolist() == [100] * 3  # x < 600: grey
        assert (lvl2[10, 50] == 255).all()  # None -> white
        # the partial last block (1300 = 81 * 16 + 4) averages with white
        assert lvl2[10, 81, 0] == round((4 * 255) / 16 + 12 * 255 / 16)
    with pytest.raises(FileExistsError, match='force_overwrite'):
        pt.write_pyramidal_tiff(p, 10, 10, tile_fn)
    with pytest.raises(ValueError, match='must return uint8'):
        pt.write_pyramidal_tiff(tmp_path / 'b.tif', 10, 10,
                                lambda y, x, h, w: np.zeros((h, w), np.uint8))
    assert not (tmp_path / 'b.tif').exists()
    assert not (tmp_path / 'b.tif.part').exists()
    with pytest.raises(ValueError, match='downsamples'):
        pt.write_pyramidal_tiff(tmp_path / 'c.tif', 10, 10, tile_fn,
                                downsamples=(2, 4))
