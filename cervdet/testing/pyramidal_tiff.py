"""Write generic pyramidal TIFFs (tiled, one page per level) with bounded memory.

The files are what openslide's ``generic-tiff`` driver, ``tiffslide`` and
:class:`~cervdet.datasets.slide_readers.TiffFileReader` all read: level 0 is
the first page, every smaller level is a further tiled page (``NewSubfileType
= reduced image``) and each page carries ``XResolution``/``YResolution`` in
pixels per centimetre, so the level-0 microns per pixel are recovered as
``1e4 / XResolution`` (openslide reports it as ``openslide.mpp-x``,
tiffslide as ``tiffslide.mpp-x``).

Memory: pixels come from ``tile_fn(y, x, h, w)`` (level-0 coordinates), which
is called for one region at a time. Level 0 asks for one TIFF tile per call;
a coarser level ``d`` builds each of its tiles from level-0 chunks of at most
``chunk_px`` x ``chunk_px`` pixels, each box-filtered (OpenCV ``INTER_AREA``
with an integer factor is the exact ``d x d`` mean) straight away, so at most
one chunk plus one output tile is in memory whatever the slide size. The
price is that ``tile_fn`` is evaluated once per level over the slide; a
``tile_fn`` may return ``None`` for blank glass (white), which makes empty
areas cheap at every level.

This module depends on numpy, OpenCV and tifffile only (no torch).
"""
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: ``tile_fn(y, x, h, w) -> uint8[h, w, 3]`` RGB of the level-0 region (or
#: ``None`` for all white).
TileFn = Callable[[int, int, int, int], Optional[np.ndarray]]
COMPRESSIONS = ('jpeg', 'zlib', None)


def level_shape(height: int, width: int, downsample: int) -> Tuple[int, int]:
    """``(h, w)`` of a level: ``ceil(size / downsample)`` so it covers the
    whole slide (the partial last block is averaged with white glass)."""
    return -(-int(height) // int(downsample)), -(-int(width) // int(downsample))


def _checked(region: Optional[np.ndarray], y: int, x: int, h: int,
             w: int) -> np.ndarray:
    """``tile_fn`` output as uint8[h, w, 3], white for ``None``."""
    if region is None:
        return np.full((h, w, 3), 255, np.uint8)
    region = np.asarray(region)
    if region.shape != (h, w, 3) or region.dtype != np.uint8:
        raise ValueError(
            f'tile_fn(y={y}, x={x}, h={h}, w={w}) must return uint8[{h}, {w}, '
            f'3] RGB (or None for white), got {region.dtype}{list(region.shape)}')
    return region


def _level_tiles(tile_fn: TileFn, height: int, width: int, ds: int,
                 tile: int, chunk_px: int) -> Iterator[np.ndarray]:
    """Row-major tiles (uint8[<=tile, <=tile, 3]) of the level ``ds``."""
    lh, lw = level_shape(height, width, ds)
    # level-0 chunk side: a multiple of ds (integer box filter per chunk)
    chunk = max(ds, (chunk_px // ds) * ds)
    for ty in range(0, lh, tile):
        th = min(tile, lh - ty)
        for tx in range(0, lw, tile):
            tw = min(tile, lw - tx)
            if ds == 1:
                yield _checked(tile_fn(ty, tx, th, tw), ty, tx, th, tw)
                continue
            out = np.empty((th, tw, 3), np.uint8)
            y0, x0 = ty * ds, tx * ds  # level-0 origin of this tile
            for cy in range(y0, y0 + th * ds, chunk):
                ch = min(chunk, y0 + th * ds - cy)  # multiple of ds
                for cx in range(x0, x0 + tw * ds, chunk):
                    cw = min(chunk, x0 + tw * ds - cx)
                    # inside the slide; the rest of the block is white glass
                    ih, iw = min(ch, height - cy), min(cw, width - cx)
                    block = np.full((ch, cw, 3), 255, np.uint8)
                    if ih > 0 and iw > 0:
                        block[:ih, :iw] = _checked(tile_fn(cy, cx, ih, iw),
                                                   cy, cx, ih, iw)
                    small = cv2.resize(block, (cw // ds, ch // ds),
                                       interpolation=cv2.INTER_AREA)
                    oy, ox = (cy - y0) // ds, (cx - x0) // ds
                    out[oy:oy + ch // ds, ox:ox + cw // ds] = small
            yield out


def write_pyramidal_tiff(path: Union[str, Path], height: int, width: int,
                         tile_fn: TileFn, mpp: Optional[float] = 0.5,
                         downsamples: Sequence[int] = (1, 4, 16),
                         tile: int = 256,
                         compression: Optional[str] = 'jpeg',
                         description: Optional[str] = None,
                         jpeg_quality: int = 90, chunk_px: int = 2048,
                         bigtiff: Optional[bool] = None,
                         force_overwrite: bool = False,
                         progress: bool = False) -> Path:
    """Write a tiled pyramidal TIFF whose pixels come from ``tile_fn``.

    Args:
        path (str | Path): Output ``.tif``.
        height (int): Level-0 height in pixels.
        width (int): Level-0 width in pixels.
        tile_fn (callable): ``tile_fn(y, x, h, w) -> uint8[h, w, 3]`` RGB of
            the level-0 region with top-left ``(x, y)``, or ``None`` when the
            region is blank glass (white). Always called inside the slide.
        mpp (float, optional): Level-0 microns per pixel, written as
            ``XResolution = YResolution = 1e4 / mpp`` px/cm (level ``d``:
            ``1e4 / (mpp * d)``); ``None`` writes no resolution.
        downsamples (Sequence[int]): Integer downsample of each level,
            strictly increasing, starting at 1. A level is
            ``ceil(size / d)`` px.
        tile (int): TIFF tile side (multiple of 16).
        compression (str, optional): ``'jpeg'`` (lossy, small files),
            ``'zlib'`` (lossless) or ``None``.
        description (str, optional): ImageDescription of level 0.
        jpeg_quality (int): JPEG quality when ``compression='jpeg'``.
        chunk_px (int): Largest level-0 region side asked from ``tile_fn``
            when building coarser levels (bounds memory).
        bigtiff (bool, optional): Write BigTIFF; default: when the raw
            level-0 size exceeds 2 GiB.
        force_overwrite (bool): Replace an existing ``path``.
        progress (bool): Show a progress bar (tqdm) of tiles per level.

    Returns:
        Path: ``path``.
    """
    import tifffile
    path = Path(path)
    if path.exists() and not force_overwrite:
        raise FileExistsError(f'{path} exists: pass force_overwrite=True to '
                              'replace it or choose another path')
    if compression not in COMPRESSIONS:
        raise ValueError(f'compression must be one of {COMPRESSIONS}, got '
                         f'{compression!r}')
    ds = [int(d) for d in downsamples]
    if not ds or ds[0] != 1 or any(b <= a for a, b in zip(ds, ds[1:])) or \
            any(d != f for d, f in zip(ds, downsamples)):
        raise ValueError(f'downsamples must be increasing integers starting '
                         f'at 1, got {tuple(downsamples)}')
    if height < 1 or width < 1:
        raise ValueError(f'slide size must be >= 1 px, got {height}x{width}')
    if tile < 16 or tile % 16:
        raise ValueError(f'tile must be a multiple of 16, got {tile}')
    if mpp is not None and not mpp > 0:
        raise ValueError(f'mpp must be > 0 (or None), got {mpp}')
    if bigtiff is None:
        bigtiff = height * width * 3 > 2**31 - 2**26
    comp_kw = dict(compression=compression)
    if compression == 'jpeg':
        comp_kw['compressionargs'] = dict(level=int(jpeg_quality))
    bar = None
    if progress:
        from tqdm import tqdm
        total = sum(-(-level_shape(height, width, d)[0] // tile) *
                    -(-level_shape(height, width, d)[1] // tile) for d in ds)
        bar = tqdm(total=total, unit='tile', desc=f'write {path.name}')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.part')
    try:
        with tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tw:
            for i, d in enumerate(ds):
                lh, lw = level_shape(height, width, d)
                tiles = _level_tiles(tile_fn, height, width, d, tile,
                                     chunk_px)
                if bar is not None:
                    tiles = _counted(tiles, bar)
                kw = {}
                if mpp is not None:
                    kw = dict(resolution=(1e4 / (mpp * d), 1e4 / (mpp * d)),
                              resolutionunit='CENTIMETER')
                tw.write(tiles, shape=(lh, lw, 3), dtype=np.uint8,
                         tile=(tile, tile), photometric='rgb',
                         subfiletype=0 if i == 0 else 1,
                         description=description if i == 0 else None,
                         metadata=None, maxworkers=1, **comp_kw, **kw)
        tmp.replace(path)
    finally:
        if bar is not None:
            bar.close()
        if tmp.exists():
            tmp.unlink()
    return path


def _counted(it: Iterator[np.ndarray], bar) -> Iterator[np.ndarray]:
    for item in it:
        bar.update(1)
        yield item


def write_pyramidal_tiff_from_array(path: Union[str, Path], img: np.ndarray,
                                    **kwargs) -> Path:
    """:func:`write_pyramidal_tiff` of an in-memory RGB image.

    Args:
        path (str | Path): Output ``.tif``.
        img (np.ndarray[H, W, 3]): uint8 RGB level 0.
        **kwargs: Further arguments of :func:`write_pyramidal_tiff`.

    Returns:
        Path: ``path``.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'img must be uint8[H, W, 3] RGB, got '
                         f'{img.dtype}{list(img.shape)}')
    return write_pyramidal_tiff(
        path, img.shape[0], img.shape[1],
        lambda y, x, h, w: img[y:y + h, x:x + w], **kwargs)


__all__ = ['write_pyramidal_tiff', 'write_pyramidal_tiff_from_array',
           'level_shape', 'COMPRESSIONS']
