"""Tiling of whole slides and large fields for streamed inference.

Three steps, each cheap and memory-bounded whatever the slide size:

1. :func:`tissue_mask` - a low-resolution mask of tissue (not blank glass)
   from the reader's thumbnail;
2. :func:`plan_tiles` - the regular grid of tiles (level-0 origins,
   overlap, interior-edge flags) and the tissue fraction of every tile,
   computed at once from an integral image of the mask;
3. :class:`SlideTileDataset` - a ``torch.utils.data.Dataset`` reading the
   kept tiles at the target resolution, one reader per worker process, with
   :func:`collate_tiles` for a ``DataLoader``.

:func:`resolve_read_scale` turns a target resolution (microns per pixel)
into the read downsample (level-0 px per output px). The SSL tile
extraction (:mod:`cervdet.datasets.ssl_tiles`) chooses its tiles with the
same mask and plan. One module (over 500 lines): the three steps are read
together by slide inference and tile extraction.
"""
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .slide_readers import ImageReader, SlideReader, open_slide

MASK_METHODS = ('saturation-otsu', 'fixed')


class TileReadError(OSError):
    """A tile of a slide could not be read (names the slide and origin)."""


# ----------------------------------------------------------------------------
# Tissue mask
# ----------------------------------------------------------------------------
def _otsu(values: np.ndarray) -> float:
    """Otsu threshold of uint8 values (0 for a constant image)."""
    values = np.ascontiguousarray(values.reshape(-1, 1), dtype=np.uint8)
    if values.size == 0 or values.min() == values.max():
        return 0.
    thr, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(thr)


def tissue_mask_from_rgb(rgb: np.ndarray, method: str = 'saturation-otsu',
                         min_saturation: float = 20.,
                         min_darkness: float = 25.,
                         max_threshold: float = 40.,
                         glass_percentile: float = 99.,
                         morph_px: int = 3) -> np.ndarray:
    """Tissue mask of a low-resolution RGB image (blank glass is False).

    Two cues, so stained (H&E, Pap, ThinPrep) and greyscale images both
    work: the HSV saturation ``S`` and the darkness below the glass level
    ``D = glass - grey`` (``glass`` = the ``glass_percentile`` of the grey
    levels, at least 200: glass is the brightest thing on a slide). A pixel
    is tissue when ``S > t_S`` or ``D > t_D``. With ``'saturation-otsu'``
    each threshold is Otsu's over the image, clipped to
    ``[min_*, max_threshold]``: the floor keeps an all-blank slide empty
    (Otsu would split its noise), the ceiling keeps pale cytoplasm when
    cells fill the image (Otsu would split nuclei from cytoplasm); with
    ``'fixed'`` the thresholds are the floors. A ``morph_px`` opening then
    closing removes specks and fills small holes.

    Args:
        rgb (np.ndarray[h, w, 3]): uint8 RGB thumbnail.
        method (str): ``'saturation-otsu'`` or ``'fixed'``.
        min_saturation (float): Floor of the saturation threshold (0-255).
        min_darkness (float): Floor of the darkness threshold (grey levels).
        max_threshold (float): Ceiling of both Otsu thresholds.
        glass_percentile (float): Percentile of grey taken as the glass.
        morph_px (int): Side of the square structuring element (0: none).

    Returns:
        np.ndarray[h, w]: bool, True on tissue.
    """
    if method not in MASK_METHODS:
        raise ValueError(f'unknown tissue mask method {method!r}; choose one '
                         f'of {MASK_METHODS}')
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'tissue mask needs a uint8 RGB image [h, w, 3], '
                         f'got {rgb.dtype}{list(rgb.shape)}')
    sat = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    glass = max(float(np.percentile(grey, glass_percentile)), 200.)
    dark = np.clip(glass - grey.astype(np.float32), 0, 255).astype(np.uint8)
    t_s, t_d = float(min_saturation), float(min_darkness)
    if method == 'saturation-otsu':
        t_s = float(np.clip(_otsu(sat), min_saturation,
                            max(max_threshold, min_saturation)))
        t_d = float(np.clip(_otsu(dark), min_darkness,
                            max(max_threshold, min_darkness)))
    mask = ((sat > t_s) | (dark > t_d)).astype(np.uint8)
    if morph_px > 1:
        k = np.ones((int(morph_px), int(morph_px)), np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k)
    return mask.astype(bool)


def tissue_mask(reader: SlideReader, max_side: int = 1024,
                method: str = 'saturation-otsu', min_saturation: float = 20.,
                min_darkness: float = 25., max_threshold: float = 40.,
                glass_percentile: float = 99., morph_px: int = 3
                ) -> Tuple[np.ndarray, float]:
    """Low-resolution tissue mask of a slide from ``reader.thumbnail``.

    See :func:`tissue_mask_from_rgb` for the method and arguments.

    Args:
        reader (SlideReader): The open slide.
        max_side (int): Longest side of the thumbnail the mask is computed on.

    Returns:
        tuple[np.ndarray[h, w], float]: bool mask (True on tissue) and its
        downsample (level-0 px per mask px).
    """
    thumb, ds = reader.thumbnail(int(max_side))
    mask = tissue_mask_from_rgb(thumb, method=method,
                                min_saturation=min_saturation,
                                min_darkness=min_darkness,
                                max_threshold=max_threshold,
                                glass_percentile=glass_percentile,
                                morph_px=morph_px)
    return mask, float(ds)


# ----------------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------------
def resolve_read_scale(slide_mpp: Optional[float],
                       target_mpp: Optional[float] = None,
                       given_mpp: Optional[float] = None) -> float:
    """Level-0 pixels per output pixel for a target resolution.

    Args:
        slide_mpp (float, optional): Level-0 microns per pixel from the file.
        target_mpp (float, optional): Resolution the detector expects;
            ``None``: read at level 0 (scale 1).
        given_mpp (float, optional): The slide's mpp given by the user;
            overrides ``slide_mpp`` (wrong or missing metadata).

    Returns:
        float: ``target_mpp / mpp`` (> 1 reads coarser than level 0).
    """
    for name, v in (('slide mpp', slide_mpp), ('target mpp', target_mpp),
                    ('given mpp', given_mpp)):
        if v is not None and not float(v) > 0:
            raise ValueError(f'{name} must be > 0, got {v}')
    if target_mpp is None:
        return 1.
    mpp = given_mpp if given_mpp is not None else slide_mpp
    if mpp is None:
        raise ValueError(
            f'a target resolution of {target_mpp} um/px was asked but the '
            'slide has no microns-per-pixel metadata: give the slide mpp '
            '(e.g. --mpp 0.25 / given_mpp=0.25) or read at level 0 '
            '(no target mpp)')
    return float(target_mpp) / float(mpp)


# ----------------------------------------------------------------------------
# Tile plan
# ----------------------------------------------------------------------------
@dataclass
class TilePlan:
    """The tile grid of one slide.

    Attributes:
        origins (np.ndarray[N, 2]): int64 ``(x0, y0)`` level-0 top-left of
            every grid tile, row-major.
        tissue (np.ndarray[N]): float32 tissue fraction of each tile (of its
            part inside the slide); 1 without a mask.
        keep (np.ndarray[N]): bool, ``tissue >= min_tissue``.
        edges (np.ndarray[N, 4]): bool, the (left, top, right, bottom) edge
            of the tile is *interior* (a neighbouring tile overlaps it);
            detections touching an interior edge are the ones to merge.
        tile_size (int): Tile side in output (read) pixels.
        overlap (int): Overlap of neighbours in output pixels (negative:
            the gap of a grid whose stride exceeds the tile).
        read_downsample (float): Level-0 px per output px.
        stride (float): Nominal grid step in level-0 px
            (``(tile_size - overlap) * read_downsample``); the last row and
            column are shifted inside the slide, so their step is smaller.
        footprint (float): Tile side in level-0 px
            (``tile_size * read_downsample``).
        grid_shape (tuple[int, int]): ``(rows, cols)``.
        dimensions (tuple[int, int]): Level-0 ``(W, H)`` of the slide.
    """

    origins: np.ndarray
    tissue: np.ndarray
    keep: np.ndarray
    edges: np.ndarray
    tile_size: int
    overlap: int
    read_downsample: float
    stride: float
    footprint: float
    grid_shape: Tuple[int, int]
    dimensions: Tuple[int, int]

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    @property
    def kept_indices(self) -> np.ndarray:
        """int64[K] grid indices of the kept tiles."""
        return np.flatnonzero(self.keep).astype(np.int64)

    @property
    def rows_cols(self) -> np.ndarray:
        """int64[N, 2] ``(row, col)`` of every tile."""
        idx = np.arange(len(self), dtype=np.int64)
        return np.stack([idx // self.grid_shape[1],
                         idx % self.grid_shape[1]], 1)


def grid_positions(length: int, footprint: float, stride: float
                   ) -> np.ndarray:
    """Tile starts along one axis (level-0 px), the last shifted inside.

    Args:
        length (int): Slide size along the axis.
        footprint (float): Tile size (level-0 px).
        stride (float): Step (level-0 px), ``> 0``; larger than
            ``footprint`` leaves gaps between tiles.

    Returns:
        np.ndarray[n]: int64 starts; ``[0]`` when the slide is not larger
        than one tile (that tile is padded white).
    """
    if length <= footprint:
        return np.zeros(1, np.int64)
    span = length - footprint
    n = int(np.ceil(span / stride - 1e-9)) + 1
    pos = np.round(np.arange(n) * stride).astype(np.int64)
    pos[-1] = int(np.floor(span))  # last tile ends at the border
    return np.minimum(pos, pos[-1])


def tile_tissue_fraction(origins: np.ndarray, footprint: float,
                         dimensions: Tuple[int, int], mask: np.ndarray,
                         mask_downsample: float) -> np.ndarray:
    """Tissue fraction of every tile from a low-res mask (integral image).

    The fraction is over the part of the tile inside the slide (a tile
    padded past a small image is not penalised); each tile covers at least
    one mask pixel.

    Args:
        origins (np.ndarray[N, 2]): Level-0 ``(x0, y0)``.
        footprint (float): Tile side in level-0 px.
        dimensions (tuple[int, int]): Level-0 ``(W, H)``.
        mask (np.ndarray[h, w]): bool tissue mask.
        mask_downsample (float): Level-0 px per mask px.

    Returns:
        np.ndarray[N]: float32 in [0, 1].
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be 2-D [h, w], got shape {mask.shape}')
    h, w = mask.shape
    W, H = dimensions
    integral = cv2.integral(mask.astype(np.uint8)).astype(np.float64)
    o = np.asarray(origins, np.float64).reshape(-1, 2)
    lo = o / mask_downsample
    hi = np.minimum(o + footprint, np.asarray([W, H], np.float64)) / \
        mask_downsample
    x0 = np.clip(np.floor(lo[:, 0] + 0.5), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.floor(lo[:, 1] + 0.5), 0, h - 1).astype(np.int64)
    x1 = np.clip(np.floor(hi[:, 0] + 0.5), x0 + 1, w).astype(np.int64)
    y1 = np.clip(np.floor(hi[:, 1] + 0.5), y0 + 1, h).astype(np.int64)
    area = (x1 - x0) * (y1 - y0)
    s = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + \
        integral[y0, x0]
    return (s / area).astype(np.float32)


def plan_tiles(dimensions: Tuple[int, int], tile_size: int, overlap: int = 0,
               read_downsample: float = 1., mask: Optional[np.ndarray] = None,
               mask_downsample: Optional[float] = None,
               min_tissue: float = 0.05,
               stride: Optional[int] = None) -> TilePlan:
    """The tile grid of a slide and the tiles worth reading.

    The one tile plan of cervdet: slide inference reads its tiles and the
    self-supervised tile extraction
    (:func:`cervdet.datasets.ssl_tiles.extract_tiles`) cuts its training
    tiles by it.

    Args:
        dimensions (tuple[int, int]): Level-0 ``(W, H)``.
        tile_size (int): Tile side in output px (what the detector gets).
        overlap (int): Overlap of neighbouring tiles in output px
            (``0 <= overlap < tile_size``); make it larger than the largest
            cell so every cell is whole in some tile.
        read_downsample (float): Level-0 px per output px
            (:func:`resolve_read_scale`).
        mask (np.ndarray[h, w], optional): bool tissue mask.
        mask_downsample (float, optional): Level-0 px per mask px (needed
            with ``mask``).
        min_tissue (float): Smallest tissue fraction of a kept tile.
        stride (int, optional): Grid step in output px instead of
            ``tile_size - overlap`` (give ``overlap=0`` with it). A step
            larger than ``tile_size`` leaves gaps between the tiles (the
            plan's ``overlap`` is then negative and no edge is interior).

    Returns:
        TilePlan: Grid, tissue fractions, kept tiles and edge flags.
    """
    W, H = (int(v) for v in dimensions)
    if W < 1 or H < 1:
        raise ValueError(f'slide dimensions must be >= 1, got {dimensions}')
    tile_size, overlap = int(tile_size), int(overlap)
    if tile_size < 1:
        raise ValueError(f'tile_size must be >= 1, got {tile_size}')
    if stride is not None:
        if overlap:
            raise ValueError('plan_tiles: give overlap or stride, not both')
        if int(stride) < 1:
            raise ValueError(f'stride must be >= 1, got {stride}')
        overlap = tile_size - int(stride)
    elif not 0 <= overlap < tile_size:
        raise ValueError(f'overlap must be in [0, tile_size={tile_size}), '
                         f'got {overlap}')
    if not read_downsample > 0:
        raise ValueError(f'read_downsample must be > 0, got '
                         f'{read_downsample}')
    if not 0. <= min_tissue <= 1.:
        raise ValueError(f'min_tissue must be in [0, 1], got {min_tissue}')
    footprint = tile_size * float(read_downsample)
    stride = (tile_size - overlap) * float(read_downsample)
    xs = grid_positions(W, footprint, stride)
    ys = grid_positions(H, footprint, stride)
    gy, gx = np.meshgrid(ys, xs, indexing='ij')
    origins = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.int64)
    rows, cols = len(ys), len(xs)
    r, c = np.divmod(np.arange(rows * cols), cols)
    edges = np.stack([c > 0, r > 0, c < cols - 1, r < rows - 1], 1)
    if overlap < 0:  # gaps: no neighbour overlaps a tile
        edges[:] = False
    if mask is None:
        tissue = np.ones(len(origins), np.float32)
    else:
        if mask_downsample is None:
            raise ValueError('plan_tiles: mask given without mask_downsample '
                             '(level-0 px per mask px, returned by '
                             'tissue_mask)')
        tissue = tile_tissue_fraction(origins, footprint, (W, H), mask,
                                      float(mask_downsample))
    return TilePlan(origins=origins, tissue=tissue, keep=tissue >= min_tissue,
                    edges=edges, tile_size=tile_size, overlap=overlap,
                    read_downsample=float(read_downsample), stride=stride,
                    footprint=footprint, grid_shape=(rows, cols),
                    dimensions=(W, H))


# ----------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------
#: Plain images decoded in this process, by (path, size, mtime, mpp): weak
#: references, so an image lives only as long as some reader holds it.
_DECODED: 'weakref.WeakValueDictionary' = weakref.WeakValueDictionary()


def _decoded_key(path: Path, mpp: Optional[float]):
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, mpp)


def open_shared(path: Union[str, Path], backend: str = 'auto',
                mpp: Optional[float] = None) -> SlideReader:
    """:func:`open_slide`, sharing an already decoded plain image.

    A plain image (:class:`ImageReader`) is decoded whole; opening it again
    while a reader of it is alive in this process (the slide's own reader,
    the tile dataset's) returns that reader instead of decoding it again, and
    DataLoader workers forked from this process inherit it without decoding.
    Whole-slide readers are always opened anew (their file handles must not
    cross processes). Closing a plain-image reader frees nothing (the array
    goes with the last reference), so sharing it is safe.
    """
    path = Path(path)
    try:
        key = _decoded_key(path, mpp)
    except OSError:
        return open_slide(path, backend=backend, mpp=mpp)  # names the error
    reader = _DECODED.get(key)
    if reader is not None and backend in ('auto', 'image'):
        return reader
    reader = open_slide(path, backend=backend, mpp=mpp)
    if type(reader) is ImageReader:
        _DECODED[key] = reader
    return reader


def is_decoded(path: Union[str, Path], mpp: Optional[float] = None) -> bool:
    """Whether a decoded plain image of ``path`` is alive in this process
    (:func:`open_shared`): its tiles are array slices, so reader processes
    would only add their start-up. Opens nothing."""
    try:
        return _decoded_key(Path(path), mpp) in _DECODED
    except OSError:
        return False


def read_tile(reader: SlideReader, x0: int, y0: int, tile_size: int,
              read_downsample: float) -> np.ndarray:
    """One tile: the level-0 square ``tile_size * read_downsample`` at
    ``(x0, y0)``, read at the best level and resized (``INTER_AREA``).

    Returns:
        np.ndarray[tile_size, tile_size, 3]: RGB uint8 (white outside).
    """
    level = reader.best_level_for_downsample(read_downsample)
    lds = reader.level_downsamples[level]
    size = max(1, int(round(tile_size * read_downsample / lds)))
    img = reader.read_region(int(x0), int(y0), size, size, level)
    if size != tile_size:
        interp = cv2.INTER_AREA if size > tile_size else cv2.INTER_LINEAR
        img = cv2.resize(img, (tile_size, tile_size), interpolation=interp)
    return img


class SlideTileDataset(Dataset):
    """Tiles of one slide for a ``torch.utils.data.DataLoader``.

    The reader is opened lazily in the process that reads (each DataLoader
    worker opens its own; pickling drops it), so it works with
    ``num_workers > 0`` and fork or spawn start methods.

    Args:
        path (str | Path): The slide or field.
        origins (np.ndarray[N, 2]): int64 level-0 ``(x0, y0)`` of the tiles
            to read (e.g. ``plan.origins[plan.keep]``).
        tile_size (int): Output tile side in px.
        read_downsample (float): Level-0 px per output px.
        backend (str): Reader backend (:func:`open_slide`).
        mpp (float, optional): Slide mpp when the file has none.
        to_bgr (bool): Return BGR (what mmdet pipelines expect) instead of
            RGB.

    Items:
        dict: ``img`` uint8[tile_size, tile_size, 3] (BGR when ``to_bgr``),
        ``index`` (int, position in ``origins``), ``origin`` (tuple
        ``(x0, y0)`` level-0).
    """

    def __init__(self, path: Union[str, Path], origins: np.ndarray,
                 tile_size: int, read_downsample: float = 1.,
                 backend: str = 'auto', mpp: Optional[float] = None,
                 to_bgr: bool = True) -> None:
        self.path = Path(path)
        origins = np.asarray(origins, dtype=np.int64)
        if origins.ndim != 2 or origins.shape[1] != 2:
            raise ValueError(f'origins must be int64[N, 2] (x0, y0), got '
                             f'shape {origins.shape}')
        if not self.path.is_file():
            raise FileNotFoundError(f'slide {self.path} not found')
        self.origins = origins
        self.tile_size = int(tile_size)
        self.read_downsample = float(read_downsample)
        self.backend = backend
        self.mpp = mpp
        self.to_bgr = bool(to_bgr)
        self._reader: Optional[SlideReader] = None
        self._pid: Optional[int] = None

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    @property
    def reader(self) -> SlideReader:
        """This process's reader (opened on first use)."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = open_shared(self.path, backend=self.backend,
                                       mpp=self.mpp)
            self._pid = os.getpid()
        return self._reader

    def __getitem__(self, i: int) -> Dict:
        i = int(i)
        x0, y0 = (int(v) for v in self.origins[i])
        try:
            img = read_tile(self.reader, x0, y0, self.tile_size,
                            self.read_downsample)
        except Exception as e:  # noqa: BLE001 - name the slide and tile
            raise TileReadError(
                f'reading tile {i} at level-0 origin ({x0}, {y0}) of slide '
                f'{self.path} failed: {type(e).__name__}: {e}') from e
        if self.to_bgr:
            img = np.ascontiguousarray(img[..., ::-1])
        return dict(img=img, index=i, origin=(x0, y0))

    def close(self) -> None:
        """Close this process's reader."""
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> Dict:
        state = dict(self.__dict__)
        state['_reader'] = None
        state['_pid'] = None
        return state


def collate_tiles(batch: Sequence[Dict]) -> Dict:
    """Collate :class:`SlideTileDataset` items.

    Returns:
        dict: ``imgs`` (list[np.ndarray[T, T, 3]]), ``index``
        (LongTensor[B]) and ``origin`` (LongTensor[B, 2], level-0
        ``(x0, y0)``).
    """
    imgs: List[np.ndarray] = [b['img'] for b in batch]
    index = torch.as_tensor([int(b['index']) for b in batch],
                            dtype=torch.long)
    origin = torch.as_tensor([list(b['origin']) for b in batch],
                             dtype=torch.long).reshape(-1, 2)
    return dict(imgs=imgs, index=index, origin=origin)


__all__ = ['tissue_mask', 'tissue_mask_from_rgb', 'resolve_read_scale',
           'TilePlan', 'plan_tiles', 'grid_positions',
           'tile_tissue_fraction', 'read_tile', 'SlideTileDataset',
           'collate_tiles', 'TileReadError', 'MASK_METHODS', 'open_shared',
           'is_decoded']
