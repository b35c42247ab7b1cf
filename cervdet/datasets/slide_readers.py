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

The WSI packages are imported lazily; :func:`open_slide` names the package
to install when none is available. No slide is ever decoded whole at level
0: :meth:`SlideReader.read_region` reads one region, :meth:`thumbnail` uses
the lowest-resolution level that is large enough.

This module depends on numpy, OpenCV and PIL only (no torch), so tools can
load it without importing cervdet.
"""
import importlib
import importlib.util
from pathlib import Path
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np

#: Extensions read as whole-slide images (through openslide or tiffslide).
WSI_EXTS = ('.svs', '.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif',
            '.svslide')
#: Extensions tried as WSI first (pyramidal TIFF), plain image otherwise.
TIFF_EXTS = ('.tif', '.tiff')
#: Plain image extensions.
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
_INSTALL_HINT = ('pip install openslide-python openslide-bin  (or: pip '
                 'install tiffslide)')
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


def _resize_to_max_side(img: np.ndarray, max_side: int) -> Tuple[np.ndarray,
                                                                  float]:
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


class _WSIReader(SlideReader):
    """Shared code of the openslide-like backends (``self._slide``)."""

    _slide = None
    #: Largest number of level pixels read at once by :meth:`thumbnail`.
    strip_pixels: int = 2**24

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

    def read_region(self, x, y, width, height, level=0):
        region = self._slide.read_region((int(x), int(y)), int(level),
                                         (int(width), int(height)))
        rgba = np.asarray(region)
        if rgba.ndim == 3 and rgba.shape[2] == 4:  # transparent = no tissue
            alpha = rgba[..., 3:4].astype(np.float32) / 255.
            rgb = rgba[..., :3].astype(np.float32) * alpha + 255. * (1 - alpha)
            return rgb.round().astype(np.uint8)
        return np.ascontiguousarray(rgba[..., :3]).astype(np.uint8)

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
            self._slide.close()
            self._slide = None


class OpenSlideReader(_WSIReader):
    """A WSI read through ``openslide`` (openslide-python + openslide-bin)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        openslide = _import('openslide', 'pip install openslide-python '
                            'openslide-bin')
        self._slide = openslide.OpenSlide(str(self.path))
        self._init_geometry()


class TiffSlideReader(_WSIReader):
    """A WSI read through ``tiffslide`` (SVS, pyramidal TIFF)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        tiffslide = _import('tiffslide', 'pip install tiffslide')
        self._slide = tiffslide.TiffSlide(str(self.path))
        self._init_geometry()


def _import(name: str, hint: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f'reading whole-slide images needs the {name!r} '
                          f'package: {hint}') from e


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def open_slide(path: Union[str, Path], backend: str = 'auto',
               mpp: Optional[float] = None) -> SlideReader:
    """Open a large image with the right reader.

    Args:
        path (str | Path): A plain image or a whole-slide image.
        backend (str): ``'auto'`` (WSI extensions: openslide, else
            tiffslide; ``.tif/.tiff``: a WSI backend when installed, plain
            image otherwise; other extensions: plain image), ``'image'``,
            ``'openslide'`` or ``'tiffslide'``.
        mpp (float, optional): Microns per pixel of a plain image (WSI
            readers take it from the file).

    Returns:
        SlideReader: The opened reader (use as a context manager).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'image {path} not found')
    ext = path.suffix.lower()
    if backend == 'image':
        return ImageReader(path, mpp)
    if backend == 'openslide':
        return OpenSlideReader(path)
    if backend == 'tiffslide':
        return TiffSlideReader(path)
    if backend != 'auto':
        raise ValueError(f'unknown slide backend {backend!r}; choose auto, '
                         'image, openslide or tiffslide')
    if ext in WSI_EXTS or ext in TIFF_EXTS:
        if _available('openslide'):
            try:
                return OpenSlideReader(path)
            except Exception:  # noqa: BLE001 - not a slide openslide reads
                if ext in WSI_EXTS and not _available('tiffslide'):
                    raise
        if _available('tiffslide'):
            try:
                return TiffSlideReader(path)
            except Exception:  # noqa: BLE001
                if ext in WSI_EXTS:
                    raise
        if ext in WSI_EXTS:
            raise ImportError(f'{path} is a whole-slide image: install a '
                              f'reader: {_INSTALL_HINT}')
    return ImageReader(path, mpp)


__all__ = ['SlideReader', 'ImageReader', 'OpenSlideReader', 'TiffSlideReader',
           'open_slide', 'WSI_EXTS', 'TIFF_EXTS', 'IMAGE_EXTS']
