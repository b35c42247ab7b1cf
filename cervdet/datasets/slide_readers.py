"""Readers of large images: plain fields and whole-slide images (WSI).

One small interface, :class:`SlideReader`, serves the tile extractor
(``tools/ssl/extract_tiles.py``) and any tiled inference: level geometry, a
region read in level-0 coordinates and a cheap thumbnail. Backends:

* :class:`ImageReader`: plain images (JPEG/PNG/BMP/TIFF fields) through
  OpenCV (PIL for what OpenCV cannot read); one level, decoded once.
* :class:`OpenSlideReader`: WSI through ``openslide``
  (``pip install openslide-python openslide-bin``).
* :class:`TiffSlideReader`: WSI through ``tiffslide`` (``pip install
  tiffslide``), pure Python, reads SVS and pyramidal TIFF.
* :class:`TiffFileReader`: pyramidal / tiled TIFF (and SVS) through
  ``tifffile`` alone: a region read decodes only the TIFF tiles (or strips)
  it overlaps.

Every backend reports ``mpp`` (level-0 microns per pixel) when the file has
it; for TIFF files whose backend does not expose it the resolution tags are
read with tifffile (header only). Readers of WSI backends reopen their file
after a fork (one handle per process, e.g. per DataLoader worker).

The WSI packages are imported lazily; :func:`open_slide` names the package
to install when none is available. No slide is ever decoded whole at level
0: :meth:`SlideReader.read_region` reads one region, :meth:`thumbnail` uses
the lowest-resolution level that is large enough.

This module depends on numpy, OpenCV and PIL only (no torch).

One module (over 500 lines): four backends behind one small interface,
sharing the level geometry and mpp code of ``_WSIReader``; each backend is
about a hundred lines.
"""
import importlib
import importlib.util
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..utils.constants import IMG_EXTS

#: Extensions read as whole-slide images (through openslide or tiffslide).
WSI_EXTS = ('.svs', '.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif',
            '.svslide')
#: Extensions tried as WSI first (pyramidal TIFF), plain image otherwise.
TIFF_EXTS = ('.tif', '.tiff')
#: Plain image extensions: ``cervdet.utils.constants.IMG_EXTS`` and ``.webp``.
IMAGE_EXTS = IMG_EXTS + ('.webp', )
_INSTALL_HINT = ('pip install openslide-python openslide-bin  (or: pip '
                 'install tiffslide, or: pip install tifffile imagecodecs)')
#: Backends of :func:`open_slide`; ``'auto'`` tries the WSI ones in this order.
BACKENDS = ('auto', 'image', 'openslide', 'tiffslide', 'tifffile')
WSI_BACKENDS = ('openslide', 'tiffslide', 'tifffile')
#: Order tried for ``.tif/.tiff``: generic pyramidal TIFFs read about 10x
#: faster through tifffile / tiffslide than through openslide here
#: (``benchmarks/bench_slide_readers.py``); vendor formats keep openslide first.
TIFF_BACKENDS = ('tifffile', 'tiffslide', 'openslide')
#: Largest plain image decoded whole (pixels); larger files need a WSI reader.
MAX_PLAIN_PIXELS = 2**28


class SlideReader:
    """Interface of a multi-resolution image.

    Attributes:
        path (Path): The file.
        level_dimensions (list[tuple[int, int]]): ``(width, height)`` of each
            level; level 0 is the full resolution.
        level_downsamples (list[float]): Downsample of each level w.r.t.
            level 0.
        mpp (float, optional): Microns per pixel at level 0, when known.
    """

    path: Path
    level_dimensions: List[Tuple[int, int]]
    level_downsamples: List[float]
    mpp: Optional[float] = None

    @property
    def dimensions(self) -> Tuple[int, int]:
        """``(width, height)`` at level 0."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        """Number of levels."""
        return len(self.level_dimensions)

    def read_region(self, x: int, y: int, width: int, height: int,
                    level: int = 0) -> np.ndarray:
        """Read a region (like ``openslide.read_region``, but RGB uint8).

        Args:
            x (int): Left edge in **level-0** pixels.
            y (int): Top edge in **level-0** pixels.
            width (int): Width in pixels **of level** ``level``.
            height (int): Height in pixels of level ``level``.
            level (int): Pyramid level.

        Returns:
            np.ndarray[height, width, 3]: RGB uint8; outside the image is
            white (blank glass).
        """
        raise NotImplementedError

    def thumbnail(self, max_side: int) -> Tuple[np.ndarray, float]:
        """A whole-image RGB thumbnail with longest side <= ``max_side``.

        Returns:
            tuple[np.ndarray[h, w, 3], float]: The thumbnail and its
            downsample w.r.t. level 0 (level-0 px per thumbnail px).
        """
        raise NotImplementedError

    def best_level_for_downsample(self, downsample: float) -> int:
        """The coarsest level whose downsample is <= ``downsample``."""
        ds = np.asarray(self.level_downsamples, dtype=np.float64)
        ok = np.flatnonzero(ds <= downsample * (1 + 1e-6))
        return int(ok[np.argmax(ds[ok])]) if ok.size else 0

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> 'SlideReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_uint8(pixels: np.ndarray, max_value: Optional[float] = None,
             source: Union[str, Path] = 'image') -> np.ndarray:
    """8-bit pixels of a region: uint8 as is, 16-bit scaled to 0-255.

    Args:
        pixels (np.ndarray): Region ``[h, w, S]`` (or ``[h, w]``).
        max_value (float, optional): Value mapped to 255 for 16-bit data
            (the TIFF's ``MaxSampleValue`` / ``SMaxSampleValue``; default
            65535).
        source (str | Path): The file, named in the error.

    Raises:
        SlideOpenError: For other sample types (float, 32-bit), naming the
            fix.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        top = int(max_value) if max_value and 0 < max_value < 65536 \
            else 65535
        scaled = (pixels.astype(np.uint32) * 255 + top // 2) // top
        return np.minimum(scaled, 255).astype(np.uint8)
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * 255
    raise SlideOpenError(
        f'{source}: pixels are {pixels.dtype}; slide readers read 8-bit and '
        '16-bit (scaled to 8 bit) images only. Convert the slide to 8 bit '
        '(e.g. vips cast / tifffile), then run again.')


def _resize_to_max_side(img: np.ndarray,
                        max_side: int) -> Tuple[np.ndarray, float]:
    """Downscale ``img`` [H, W, 3] (area filter) to longest side <= max."""
    h, w = img.shape[:2]
    scale = max(h, w) / float(max_side)
    if scale <= 1:
        return img, 1.
    size = (max(1, int(round(w / scale))), max(1, int(round(h / scale))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), \
        w / float(size[0])


class ImageReader(SlideReader):
    """A plain image (one level), decoded once into memory.

    Args:
        path (str | Path): Image file.
        mpp (float, optional): Microns per pixel, when known (plain images
            carry none).
    """

    def __init__(self, path: Union[str, Path],
                 mpp: Optional[float] = None) -> None:
        self.path = Path(path)
        try:  # header only: refuse to decode a whole slide into memory
            from PIL import Image
            Image.MAX_IMAGE_PIXELS = None  # the check below replaces PIL's
            with Image.open(self.path) as im:
                w, h = im.size
        except Exception:  # noqa: BLE001 - OpenCV may still read it
            w = h = 0
        if w * h > MAX_PLAIN_PIXELS:
            raise ValueError(f'{self.path} is {w}x{h} px, too large to decode '
                             f'as a plain image: read it as a whole-slide '
                             f'image ({_INSTALL_HINT})')
        img = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if img is not None:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        else:
            try:
                from PIL import Image
                with Image.open(self.path) as im:
                    img = np.asarray(im.convert('RGB'))
            except Exception as e:  # noqa: BLE001 - report any decoder error
                raise OSError(f'cannot read image {self.path}: {e}; is it an '
                              'image file (or a WSI needing '
                              f'{_INSTALL_HINT})?') from e
        self._img = np.ascontiguousarray(img)
        h, w = self._img.shape[:2]
        self.level_dimensions = [(w, h)]
        self.level_downsamples = [1.]
        self.mpp = mpp

    def read_region(self, x, y, width, height, level=0):
        if level != 0:
            raise ValueError(f'{self.path} is a plain image with level 0 only '
                             f'(asked for level {level})')
        out = np.full((height, width, 3), 255, dtype=np.uint8)
        w, h = self.dimensions
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, w), min(y + height, h)
        if x1 > x0 and y1 > y0:
            out[y0 - y:y1 - y, x0 - x:x1 - x] = self._img[y0:y1, x0:x1]
        return out

    def thumbnail(self, max_side):
        return _resize_to_max_side(self._img, max_side)


class SlideOpenError(OSError):
    """No backend could open a slide (corrupt, truncated or unsupported
    file); the message lists each backend's error."""


def _mpp_from_tiff(path: Union[str, Path]) -> Optional[float]:
    """Level-0 microns per pixel from a TIFF's tags (header only).

    ``XResolution`` with ``ResolutionUnit`` centimetre (``1e4 / res``) or
    inch (``25400 / res``), else an Aperio ``MPP = ...`` in the
    ImageDescription; ``None`` when the file has neither (or is not a TIFF).
    """
    try:
        import tifffile
        with tifffile.TiffFile(str(path)) as tf:
            return _page_mpp(tf.pages[0])
    except Exception:  # noqa: BLE001 - no mpp is not an error
        return None


def _page_mpp(page) -> Optional[float]:
    """Microns per pixel of one tifffile page (see :func:`_mpp_from_tiff`)."""
    try:
        unit = int(page.resolutionunit)
        xres = float(page.resolution[0])
    except Exception:  # noqa: BLE001 - missing tags
        unit, xres = 1, 0.
    if xres > 0 and unit in (2, 3):
        mpp = (25400. if unit == 2 else 1e4) / xres
        if 1e-3 < mpp < 1e3:  # sane microscope range (not a 72-dpi default)
            return mpp
    m = re.search(r'\bMPP\s*=\s*([0-9.eE+-]+)', page.description or '')
    if m:
        try:
            return float(m.group(1))
        except ValueError:
            return None
    return None


class _WSIReader(SlideReader):
    """Shared code of the multi-level backends.

    Subclasses set ``self._slide`` (an object with ``read_region``,
    ``level_dimensions``, ``level_downsamples``, ``properties`` and
    ``close`` like ``openslide.OpenSlide``) in :meth:`_open`, or override
    :meth:`_read`. The file is reopened when the reader is used in another
    process than the one that opened it (after a fork).
    """

    _slide = None
    _pid: Optional[int] = None
    #: Largest number of level pixels read at once by :meth:`thumbnail`.
    strip_pixels: int = 2**24

    def _open(self) -> None:
        """(Re)open ``self.path`` into ``self._slide``."""
        raise NotImplementedError

    def _ensure_open(self) -> None:
        if self._pid is not None and self._pid != os.getpid():
            self._slide = None  # the parent's handle: do not close it here
            self._open()
            self._pid = os.getpid()

    def _init_geometry(self) -> None:
        s = self._slide
        self.level_dimensions = [tuple(int(v) for v in d)
                                 for d in s.level_dimensions]
        self.level_downsamples = [float(d) for d in s.level_downsamples]
        mpp = s.properties.get('openslide.mpp-x',
                               s.properties.get('tiffslide.mpp-x'))
        try:
            self.mpp = float(mpp) if mpp not in (None, '') else None
        except (TypeError, ValueError):
            self.mpp = None

    def _check_region(self, width: int, height: int, level: int) -> None:
        if not 0 <= level < len(self.level_dimensions):
            raise ValueError(f'{self.path} has levels 0..'
                             f'{len(self.level_dimensions) - 1}, asked for '
                             f'level {level}')
        if width < 1 or height < 1:
            raise ValueError(f'read_region of {self.path}: width and height '
                             f'must be >= 1, got {width}x{height}')

    def _read(self, x: int, y: int, width: int, height: int,
              level: int) -> np.ndarray:
        """The backend's region (RGB or RGBA)."""
        return np.asarray(self._slide.read_region(
            (int(x), int(y)), int(level), (int(width), int(height))))

    def read_region(self, x, y, width, height, level=0):
        x, y, width, height, level = (int(x), int(y), int(width),
                                      int(height), int(level))
        self._check_region(width, height, level)
        lw, lh = self.level_dimensions[level]
        ds = self.level_downsamples[level]
        if x >= lw * ds or y >= lh * ds or x + width * ds <= 0 or \
                y + height * ds <= 0:  # all glass: nothing to read
            return np.full((height, width, 3), 255, np.uint8)
        self._ensure_open()
        rgba = to_uint8(self._read(x, y, width, height, level),
                        getattr(self, '_max_value', None), self.path)
        if rgba.ndim == 3 and rgba.shape[2] == 4:  # transparent = no tissue
            alpha = rgba[..., 3:4]
            if (alpha == 255).all():
                rgb = np.ascontiguousarray(rgba[..., :3])
            else:  # integer compositing on white (no float copy of a strip)
                a = alpha.astype(np.uint16)
                rgb = ((rgba[..., :3] * a + 255 * (255 - a) + 127) //
                       255).astype(np.uint8)
        elif rgba.ndim == 3 and rgba.shape[2] == 1:  # greyscale
            rgb = np.repeat(rgba.astype(np.uint8), 3, axis=2)
        else:
            rgb = np.ascontiguousarray(rgba[..., :3]).astype(np.uint8)
        return self._whiten_outside(rgb, x, y, level)

    def _whiten_outside(self, rgb: np.ndarray, x: int, y: int,
                        level: int) -> np.ndarray:
        """Outside the level is white glass (tiffslide pads black)."""
        lw, lh = self.level_dimensions[level]
        ds = self.level_downsamples[level]
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        h, w = rgb.shape[:2]
        c0, r0 = max(0, -lx), max(0, -ly)
        c1, r1 = min(w, lw - lx), min(h, lh - ly)
        if c0 == 0 and r0 == 0 and c1 >= w and r1 >= h:
            return rgb
        rgb = np.array(rgb)  # writable
        if c1 <= c0 or r1 <= r0:
            rgb[:] = 255
            return rgb
        rgb[:r0], rgb[r1:], rgb[:, :c0], rgb[:, c1:] = 255, 255, 255, 255
        return rgb

    def thumbnail(self, max_side):
        w, h = self.dimensions
        # coarsest level that still has >= max_side px on its long side
        need = max(w, h) / float(max_side)
        level = self.best_level_for_downsample(need)
        lw, lh = self.level_dimensions[level]
        ds = self.level_downsamples[level]
        scale = max(lw, lh) / float(max_side)
        if scale <= 1:
            return self.read_region(0, 0, lw, lh, level), ds
        # read the level in horizontal strips, each downscaled at once, so
        # at most one strip of the level is in memory
        tw = max(1, int(round(lw / scale)))
        step = int(np.ceil(scale))  # level rows per thumbnail row (about)
        strip = step * max(1, (self.strip_pixels // lw) // step)
        parts = []
        for y in range(0, lh, strip):
            sh = min(strip, lh - y)
            th = max(1, int(round(sh / scale)))
            region = self.read_region(0, int(round(y * ds)), lw, sh, level)
            parts.append(cv2.resize(region, (tw, th),
                                    interpolation=cv2.INTER_AREA))
        return np.concatenate(parts, axis=0), ds * lw / float(tw)

    def close(self):
        if self._slide is not None:
            if self._pid is None or self._pid == os.getpid():
                self._slide.close()
            self._slide = None

    def __getstate__(self) -> Dict:
        """Pickled without the file handle (reopened in the new process)."""
        state = dict(self.__dict__)
        state['_slide'] = None
        state['_pid'] = -1  # forces a reopen on first use
        return state


class OpenSlideReader(_WSIReader):
    """A WSI read through ``openslide`` (openslide-python + openslide-bin).

    ``mpp`` is ``openslide.mpp-x``, else the TIFF resolution tags.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._open()
        self._pid = os.getpid()
        self._init_geometry()
        if self.mpp is None and self.path.suffix.lower() in TIFF_EXTS + (
                '.svs', ):
            self.mpp = _mpp_from_tiff(self.path)

    def _open(self) -> None:
        openslide = _import('openslide', 'pip install openslide-python '
                            'openslide-bin')
        self._slide = openslide.OpenSlide(str(self.path))


class TiffSlideReader(_WSIReader):
    """A WSI read through ``tiffslide`` (SVS, pyramidal TIFF).

    ``mpp`` is ``tiffslide.mpp-x``, else the TIFF resolution tags; tiffslide
    pads regions outside the slide with black, made white here.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._open()
        self._pid = os.getpid()
        self._init_geometry()
        if self.mpp is None:
            self.mpp = _mpp_from_tiff(self.path)

    def _open(self) -> None:
        tiffslide = _import('tiffslide', 'pip install tiffslide')
        self._slide = tiffslide.TiffSlide(str(self.path))


class TiffFileReader(_WSIReader):
    """A tiled (pyramidal) TIFF or SVS read with ``tifffile`` alone.

    Levels are the levels of the first image series (tifffile groups the
    pages of generic pyramidal TIFFs and SVS into one series); when the
    series has a single level, the other pages with the aspect ratio of
    level 0 are the levels (sorted by size). ``mpp`` comes from the
    resolution tags of level 0 (centimetre or inch) or an Aperio
    ``MPP = `` description.

    :meth:`read_region` reads and decodes **only the TIFF tiles** overlapping
    the region (``dataoffsets``/``databytecounts`` + ``page.decode``), with a
    small LRU cache of decoded tiles; untiled (strip) pages are decoded
    whole only below :attr:`max_whole_pixels`, larger ones strip by strip.

    Args:
        path (str | Path): The TIFF file.
        tile_cache (int): Decoded tiles kept (LRU); 0 disables the cache.

    Attributes:
        decoded_segments (int): Tiles/strips decoded so far (for tests and
            benchmarks).
    """

    #: Largest untiled page decoded (and cached) whole, in pixels.
    max_whole_pixels: int = 2**26

    def __init__(self, path: Union[str, Path], tile_cache: int = 64) -> None:
        self.path = Path(path)
        self.tile_cache = int(tile_cache)
        self.decoded_segments = 0
        self._open()
        self._pid = os.getpid()
        w0, h0 = self.level_dimensions[0]
        self.level_downsamples = [
            (w0 / float(w) + h0 / float(h)) / 2. if i else 1.
            for i, (w, h) in enumerate(self.level_dimensions)]
        self.mpp = _page_mpp(self._pages[0])

    @property
    def _max_value(self) -> Optional[float]:
        """The 16-bit value shown as white (``SMaxSampleValue`` or
        ``MaxSampleValue`` of level 0 when they are below 65535)."""
        page = self._pages[0]
        if getattr(page, 'bitspersample', 8) <= 8:
            return None
        for name in ('SMaxSampleValue', 'MaxSampleValue'):
            tag = page.tags.get(name)
            if tag is not None:
                value = np.max(np.asarray(tag.value, np.float64))
                if 0 < value < 65535:
                    return float(value)
        return None

    def _open(self) -> None:
        tifffile = _import('tifffile', 'pip install tifffile imagecodecs')
        try:
            tf = tifffile.TiffFile(str(self.path))
        except Exception as e:  # noqa: BLE001
            raise SlideOpenError(f'tifffile cannot read {self.path}: {e}') \
                from e
        try:
            pages = self._level_pages(tf)
        except Exception:
            tf.close()
            raise
        self._slide = tf
        self._pages = pages
        self._lock = threading.Lock()
        self._cache: 'OrderedDict[Tuple[int, int], np.ndarray]' = \
            OrderedDict()
        self._whole: Dict[int, np.ndarray] = {}
        self.level_dimensions = [(int(p.imagewidth), int(p.imagelength))
                                 for p in pages]

    def _level_pages(self, tf) -> list:
        """TiffPages of the levels, largest first."""
        if not tf.series:
            raise SlideOpenError(f'{self.path} holds no image')
        levels = [lvl.pages[0] for lvl in tf.series[0].levels]
        if len(levels) == 1:  # maybe separate pages tifffile did not group
            base = levels[0]
            ratio = base.imagewidth / float(base.imagelength)
            levels = [p for p in tf.pages
                      if p is base or (
                          p.imagewidth < base.imagewidth and
                          abs(p.imagewidth / float(p.imagelength) - ratio) <
                          0.02 * ratio)]
        pages = []
        for p in levels:
            if not hasattr(p, 'decode'):  # TiffFrame: a full page
                p = p.aspage()
            if p.samplesperpixel not in (1, 3, 4) or p.imagedepth > 1:
                raise SlideOpenError(
                    f'{self.path}: page of shape {p.shape} is not a 2-D '
                    'grey/RGB(A) image the tifffile reader supports')
            pages.append(p)
        pages.sort(key=lambda p: -int(p.imagewidth) * int(p.imagelength))
        return pages

    # -- segments ---------------------------------------------------------
    def _segment(self, level: int, index: int) -> np.ndarray:
        """Decoded segment ``index`` of ``level``: uint8[h, w, S]."""
        key = (level, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        page = self._pages[level]
        offset = page.dataoffsets[index]
        count = page.databytecounts[index]
        fh = self._slide.filehandle
        with self._lock:  # seek + read must not interleave between threads
            fh.seek(offset)
            data = fh.read(count) if count else None
        kw = {}
        if page.compression in (6, 7, 34892, 33007):  # JPEG flavours
            kw = dict(jpegtables=page.jpegtables, jpegheader=page.jpegheader)
        seg, _, shape = page.decode(data, index, **kw)
        self.decoded_segments += 1
        if seg is None:  # empty segment (not written): white
            seg = np.full(shape, 255, np.uint8)
        seg = to_uint8(np.asarray(seg).reshape(shape[-3:]),  # [h, w, S]
                       self._max_value, self.path)
        if self.tile_cache > 0:
            self._cache[key] = seg
            while len(self._cache) > self.tile_cache:
                self._cache.popitem(last=False)
        return seg

    def _read(self, x, y, width, height, level):
        page = self._pages[level]
        lw, lh = self.level_dimensions[level]
        ds = self.level_downsamples[level]
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        samples = int(page.samplesperpixel)
        out = np.full((height, width, samples), 255, np.uint8)
        if samples == 4:
            out[..., 3] = 0  # transparent outside (composited to white)
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, lw), min(ly + height, lh)
        if x1 <= x0 or y1 <= y0:
            return out
        if page.planarconfig == 2 and samples > 1:
            raise SlideOpenError(f'{self.path}: separate-plane TIFF pages '
                                 'are not supported by the tifffile reader; '
                                 'use backend openslide or tiffslide')
        if page.is_tiled:
            th, tw = page.tilelength, page.tilewidth
            ntx = -(-lw // tw)
            for ty in range(y0 // th, (y1 - 1) // th + 1):
                for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                    seg = self._segment(level, ty * ntx + tx)
                    # edge tiles are padded in the file: crop to the level
                    seg = seg[:lh - ty * th, :lw - tx * tw]
                    self._paste(out, seg, tx * tw, ty * th, lx, ly)
        elif lw * lh <= self.max_whole_pixels:
            if level not in self._whole:
                with self._lock:
                    img = page.asarray()
                self._whole[level] = to_uint8(
                    img.reshape(lh, lw, samples), self._max_value, self.path)
                self.decoded_segments += 1
            self._paste(out, self._whole[level], 0, 0, lx, ly)
        else:
            rps = int(page.rowsperstrip) or lh
            for s in range(y0 // rps, (y1 - 1) // rps + 1):
                seg = self._segment(level, s)[:lh - s * rps, :lw]
                self._paste(out, seg, 0, s * rps, lx, ly)
        return out

    @staticmethod
    def _paste(out: np.ndarray, seg: np.ndarray, sx: int, sy: int, lx: int,
               ly: int) -> None:
        """Copy the part of ``seg`` (level origin ``sx, sy``) inside ``out``
        (level origin ``lx, ly``)."""
        h, w = out.shape[:2]
        sh, sw = seg.shape[:2]
        ox0, oy0 = max(sx - lx, 0), max(sy - ly, 0)
        ox1, oy1 = min(sx + sw - lx, w), min(sy + sh - ly, h)
        if ox1 <= ox0 or oy1 <= oy0:
            return
        part = seg[oy0 + ly - sy:oy1 + ly - sy, ox0 + lx - sx:ox1 + lx - sx]
        out[oy0:oy1, ox0:ox1] = part

    def _whiten_outside(self, rgb, x, y, level):
        return rgb  # _read already pads white

    def close(self):
        super().close()
        self._cache = OrderedDict()
        self._whole = {}

    def __getstate__(self) -> Dict:
        state = super().__getstate__()
        for k in ('_pages', '_lock', '_cache', '_whole'):
            state.pop(k, None)
        return state


def _import(name: str, hint: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f'reading whole-slide images needs the {name!r} '
                          f'package: {hint}') from e


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


_READERS = dict(openslide=lambda p: OpenSlideReader(p),
                tiffslide=lambda p: TiffSlideReader(p),
                tifffile=lambda p: TiffFileReader(p))


def open_slide(path: Union[str, Path], backend: str = 'auto',
               mpp: Optional[float] = None) -> SlideReader:
    """Open a large image with the right reader.

    Args:
        path (str | Path): A plain image or a whole-slide image.
        backend (str): ``'auto'`` (WSI extensions: the first of openslide,
            tiffslide, tifffile that is installed and opens the file;
            ``.tif/.tiff``: tifffile, tiffslide, openslide, and a ``.tif``
            none opens is read as a plain image;
            other extensions: plain image), ``'image'``, ``'openslide'``,
            ``'tiffslide'`` or ``'tifffile'``.
        mpp (float, optional): Microns per pixel at level 0 when the file
            carries none (plain images never do); a value in the file wins
            (override it in :func:`~cervdet.datasets.slide_tiles.
            resolve_read_scale` with ``given_mpp``).

    Returns:
        SlideReader: The opened reader (use as a context manager).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unknown backend.
        ImportError: A WSI needs a backend that is not installed.
        SlideOpenError: No installed backend could open the WSI (corrupt or
            unsupported file); the message holds each backend's error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'image {path} not found')
    if backend not in BACKENDS:
        raise ValueError(f'unknown slide backend {backend!r}; choose one of '
                         f'{", ".join(BACKENDS)}')
    ext = path.suffix.lower()
    if backend == 'image':
        return ImageReader(path, mpp)
    if backend in _READERS:
        reader = _READERS[backend](path)
    elif ext in WSI_EXTS or ext in TIFF_EXTS:
        reader, errors = None, []
        for name in (TIFF_BACKENDS if ext in TIFF_EXTS else WSI_BACKENDS):
            if not _available(name):
                continue
            try:
                reader = _READERS[name](path)
                break
            except Exception as e:  # noqa: BLE001 - try the next backend
                errors.append(f'{name}: {type(e).__name__}: {e}')
        if reader is None:
            if ext in TIFF_EXTS:  # a plain (strip) TIFF field
                return ImageReader(path, mpp)
            if not errors:
                raise ImportError(f'{path} is a whole-slide image: install a '
                                  f'reader: {_INSTALL_HINT}')
            raise SlideOpenError(
                f'cannot open whole-slide image {path} (corrupt, truncated '
                f'or of a format the installed backends do not read): '
                + '; '.join(errors) + f'. Check the file; other formats may '
                f'need another reader: {_INSTALL_HINT}')
    else:
        return ImageReader(path, mpp)
    if reader.mpp is None and mpp is not None:
        reader.mpp = float(mpp)
    return reader


__all__ = ['to_uint8', 'SlideReader',
           'ImageReader', 'OpenSlideReader', 'TiffSlideReader',
           'TiffFileReader', 'SlideOpenError', 'open_slide', 'WSI_EXTS',
           'TIFF_EXTS', 'IMAGE_EXTS', 'BACKENDS', 'WSI_BACKENDS']
