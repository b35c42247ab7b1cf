"""Compose cervical cytology detection images ("mosaics") from real cell crops.

The crops are real (CRIC Cervix, ComparisonDetector); the composition is
ours: abnormal crops are pasted among normal (NILM) crops on a real slide
background, so every box is known exactly. Source crops are split per class
into train/val/test *before* composing, so no crop appears in two splits.

Output layout::

    OUT/images/{train,val,test}/<name>.jpg
    OUT/annotations/{train,val,test}.json   # COCO detection, ids 1..C
    OUT/meta.json                           # arguments + source crops per split

Example::

    python tools/dataset_converters/build_mosaic.py \\
        --source bethesda --preset 512 --out-dir data/mosaic-bethesda-512
"""
import argparse
import functools
import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: ``$CERVDET_SHARED_DATA``, else ``../shared/data`` beside the project root.
DEFAULT_DATA_ROOT = Path(os.environ.get(
    'CERVDET_SHARED_DATA', PROJECT_ROOT / '..' / 'shared' / 'data')).resolve()


def _data_module(name: str) -> ModuleType:
    """A pure-data cervdet module: ``'datasets.classes'`` (the class lists)
    or ``'utils.constants'`` (``IMG_EXTS``).

    Read straight from the checkout when the tool runs from one: importing
    the ``cervdet`` package would import torch and mmdet (~10 s) for a few
    tuples. Otherwise (tool copied elsewhere) the installed package is used.
    """
    path = PROJECT_ROOT / 'cervdet' / (name.replace('.', '/') + '.py')
    if not path.is_file():
        return importlib.import_module(f'cervdet.{name}')
    spec = importlib.util.spec_from_file_location(
        '_cervdet_' + name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_classes = _data_module('datasets.classes')
BETHESDA_CLASSES: Tuple[str, ...] = _classes.BETHESDA_CLASSES
TCT11_CLASSES: Tuple[str, ...] = _classes.TCT11_CLASSES
CRIC_FOLDER_TO_CLASS: Dict[str, str] = _classes.CRIC_FOLDER_TO_CLASS
TCT11_FOLDER_TO_CLASS: Dict[str, str] = _classes.TCT11_FOLDER_TO_CLASS
NORMAL_CLASS: str = _classes.NORMAL_CLASS

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
CRIC_DIR = 'cric_crops_bethesda'
TCT_DIR = 'tct_crops_11class'
FIELD_FILE = 'tct_field/field_4096x2816.jpg'
IMG_EXTS: Tuple[str, ...] = _data_module('utils.constants').IMG_EXTS

#: Defaults per ``--preset``; every key can be overridden on the command line.
PRESETS: Dict[str, Dict] = {
    '512': dict(img_size=512, cells_per_image=(6, 12), num_train=60,
                num_val=20, num_test=20, crop_scale=(0.7, 1.1),
                min_cell_size=24, max_cell_size=160),
    '1024': dict(img_size=1024, cells_per_image=(16, 32), num_train=240,
                 num_val=60, num_test=60, crop_scale=(1.0, 1.6),
                 min_cell_size=40, max_cell_size=320),
}


@dataclass
class MosaicConfig:
    """All settings of one mosaic build (written to ``meta.json``).

    Args:
        source (str): ``'bethesda'`` (CRIC abnormal crops) or ``'tct11'``
            (ComparisonDetector crops); normal cells always come from CRIC NILM.
        preset (str): Name of the preset the defaults came from.
        img_size (int): Side of the square output images in pixels.
        cells_per_image (tuple[int, int]): Min and max cells (abnormal +
            normal) per image, inclusive.
        abnormal_fraction (float): Share of the cells of a positive image
            that are abnormal (at least one).
        negative_fraction (float): Share of the images of each split with no
            abnormal cell (at least one per split when it has >= 2 images).
        num_train (int): Number of train images.
        num_val (int): Number of val images.
        num_test (int): Number of test images.
        split_ratios (tuple[float, float, float]): Share of each class's
            crops given to train/val/test.
        crop_scale (tuple[float, float]): Range of the random resize factor
            of a crop.
        min_cell_size (int): Smallest max-side of a pasted crop in pixels
            (tiny crops are upscaled to it).
        max_cell_size (int): Largest max-side of a pasted crop in pixels.
        max_overlap (float): Largest share of any cell's mask another cell
            may cover.
        min_crop_contrast (float): Abnormal crops (and normal ones when
            ``annotate_normal``) whose centre has no dark object of at least
            this contrast (see :func:`crop_contrast`) are not used (they show
            only glass or cytoplasm).
        background (str): ``'field'`` (quilted real blank glass) or
            ``'paper'`` (smooth paper-white of the field's blank colour).
        annotate_normal (bool): Also box normal cells as class ``NILM``.
        class_sampling (str): ``'uniform'`` (each abnormal class equally
            likely) or ``'proportional'`` (by number of crops).
        seed (int): Seed of every random choice.
        jpeg_quality (int): JPEG quality of the written images.
    """

    source: str = 'bethesda'
    preset: str = '512'
    img_size: int = 512
    cells_per_image: Tuple[int, int] = (6, 12)
    abnormal_fraction: float = 0.3
    negative_fraction: float = 0.2
    num_train: int = 60
    num_val: int = 20
    num_test: int = 20
    split_ratios: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    crop_scale: Tuple[float, float] = (0.7, 1.1)
    min_cell_size: int = 24
    max_cell_size: int = 160
    max_overlap: float = 0.1
    min_crop_contrast: float = 40.0
    background: str = 'field'
    annotate_normal: bool = False
    class_sampling: str = 'uniform'
    seed: int = 0
    jpeg_quality: int = 95

    def num_images(self, split: str) -> int:
        """Number of images of ``split``."""
        return int(getattr(self, f'num_{split}'))


def make_config(source: str = 'bethesda', preset: str = '512',
                **overrides) -> MosaicConfig:
    """Build a :class:`MosaicConfig` from a preset plus overrides.

    Args:
        source (str): ``'bethesda'`` or ``'tct11'``.
        preset (str): Key of :data:`PRESETS`.
        **overrides: Any :class:`MosaicConfig` field; ``None`` values are
            ignored (so argparse defaults of ``None`` keep the preset).

    Returns:
        MosaicConfig: The validated configuration.
    """
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose from {list(PRESETS)}')
    values = dict(PRESETS[preset], source=source, preset=preset)
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ('cells_per_image', 'split_ratios', 'crop_scale'):
        if key in values:
            values[key] = tuple(values[key])
    cfg = MosaicConfig(**values)
    _validate_config(cfg)
    return cfg


def _validate_config(cfg: MosaicConfig) -> None:
    """Raise ``ValueError`` with a fix hint for inconsistent settings."""
    if cfg.source not in ('bethesda', 'tct11'):
        raise ValueError(f'--source must be bethesda or tct11, got {cfg.source!r}')
    if cfg.background not in ('field', 'paper'):
        raise ValueError(f'--background must be field or paper, got {cfg.background!r}')
    lo, hi = cfg.cells_per_image
    if not 1 <= lo <= hi:
        raise ValueError(f'--cells-per-image needs 1 <= min <= max, got {lo} {hi}')
    if not 0.0 < cfg.abnormal_fraction <= 1.0:
        raise ValueError('--abnormal-fraction must be in (0, 1]')
    if not 0.0 <= cfg.negative_fraction <= 1.0:
        raise ValueError('--negative-fraction must be in [0, 1]')
    if len(cfg.split_ratios) != 3 or min(cfg.split_ratios) <= 0:
        raise ValueError('--split-ratios needs three positive numbers, '
                         f'e.g. 0.7 0.15 0.15; got {cfg.split_ratios}')
    if not 0 < cfg.crop_scale[0] <= cfg.crop_scale[1]:
        raise ValueError(f'--crop-scale needs 0 < lo <= hi, got {cfg.crop_scale}')
    if not 8 <= cfg.min_cell_size <= cfg.max_cell_size <= cfg.img_size:
        raise ValueError('need 8 <= --min-cell-size <= --max-cell-size <= '
                         f'--img-size, got {cfg.min_cell_size}, '
                         f'{cfg.max_cell_size}, {cfg.img_size}')
    if min(cfg.num_train, cfg.num_val, cfg.num_test) < 0:
        raise ValueError('--num-train/--num-val/--num-test must be >= 0')


def class_names(cfg: MosaicConfig) -> Tuple[str, ...]:
    """Category names in COCO id order (id = index + 1).

    Args:
        cfg (MosaicConfig): Build settings.

    Returns:
        tuple[str]: Abnormal classes of the source, plus ``NILM`` last when
        ``cfg.annotate_normal``.
    """
    names = BETHESDA_CLASSES if cfg.source == 'bethesda' else TCT11_CLASSES
    return tuple(names) + ((NORMAL_CLASS,) if cfg.annotate_normal else ())


# ----------------------------------------------------------------------------
# Source crops and their split
# ----------------------------------------------------------------------------
def _list_images(folder: Path) -> List[Path]:
    """Sorted image files of ``folder`` (raises if missing or empty)."""
    if not folder.is_dir():
        raise FileNotFoundError(f'crop folder {folder} not found; check --data-root')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTS)
    if not files:
        raise FileNotFoundError(f'no images in {folder}')
    return files


def list_source_crops(data_root: Path, source: str
                      ) -> Tuple[Dict[str, List[Path]], List[Path]]:
    """Find the abnormal crops per class and the normal crops of a source.

    Args:
        data_root (Path): The shared data folder (holds ``cric_crops_bethesda``
            and ``tct_crops_11class``).
        source (str): ``'bethesda'`` or ``'tct11'``.

    Returns:
        tuple: ``(abnormal, normal)`` with ``abnormal`` a dict class name ->
        sorted crop paths (class order of the source's class list) and
        ``normal`` the sorted CRIC NILM crop paths.
    """
    data_root = Path(data_root)
    if source == 'bethesda':
        folder_to_class = {k: v for k, v in CRIC_FOLDER_TO_CLASS.items()
                           if v != NORMAL_CLASS}
        base, order = data_root / CRIC_DIR, BETHESDA_CLASSES
    elif source == 'tct11':
        folder_to_class, base, order = (TCT11_FOLDER_TO_CLASS,
                                        data_root / TCT_DIR, TCT11_CLASSES)
    else:
        raise ValueError(f'unknown source {source!r}')
    class_to_folder = {v: k for k, v in folder_to_class.items()}
    abnormal = {c: _list_images(base / class_to_folder[c]) for c in order}
    nilm_folder = {v: k for k, v in CRIC_FOLDER_TO_CLASS.items()}[NORMAL_CLASS]
    normal = _list_images(data_root / CRIC_DIR / nilm_folder)
    return abnormal, normal


def split_items(items: Sequence, ratios: Sequence[float],
                rng: np.random.Generator) -> List[List]:
    """Shuffle ``items`` and cut them into ``len(ratios)`` disjoint parts.

    Every part gets at least one item when there are enough items.

    Args:
        items (Sequence): Items to split (e.g. crop paths of one class).
        ratios (Sequence[float]): Relative part sizes (normalised here).
        rng (np.random.Generator): Random generator.

    Returns:
        list[list]: The parts, in the order of ``ratios``.
    """
    n = len(items)
    r = np.asarray(ratios, dtype=np.float64)
    r = r / r.sum()
    counts = np.floor(r * n).astype(int)
    if n >= len(r):
        counts = np.maximum(counts, 1)
    # give the remainder to the largest parts, then fix any excess
    while counts.sum() < n:
        counts[np.argmax(r * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    order = rng.permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [[items[i] for i in order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]


def split_source_crops(abnormal: Dict[str, List[Path]], normal: List[Path],
                       ratios: Sequence[float], seed: int
                       ) -> Dict[str, Dict]:
    """Split every class's crops into train/val/test (deterministic).

    Args:
        abnormal (dict[str, list[Path]]): Abnormal crops per class.
        normal (list[Path]): Normal crops.
        ratios (Sequence[float]): train/val/test shares.
        seed (int): Seed of the split.

    Returns:
        dict: ``{split: {'abnormal': {cls: [Path]}, 'normal': [Path]}}``.
    """
    rng = np.random.default_rng([seed, 7919])
    pools = {s: {'abnormal': {}, 'normal': []} for s in SPLITS}
    for cls, paths in abnormal.items():
        for s, part in zip(SPLITS, split_items(paths, ratios, rng)):
            pools[s]['abnormal'][cls] = part
    for s, part in zip(SPLITS, split_items(normal, ratios, rng)):
        pools[s]['normal'] = part
    return pools


# ----------------------------------------------------------------------------
# Backgrounds
# ----------------------------------------------------------------------------
def blank_mask(field_img: np.ndarray, win: int = 15, max_std: float = 3.0,
               min_gray: float = 215.0, max_chroma: float = 35.0,
               margin: int = 21) -> np.ndarray:
    """Mask of blank glass in a real field (bright, flat, unstained).

    Args:
        field_img (np.ndarray): BGR uint8 image ``[H, W, 3]``.
        win (int): Window of the local standard deviation.
        max_std (float): Largest local grey-level std of blank glass.
        min_gray (float): Smallest grey level of blank glass.
        max_chroma (float): Largest ``max - min`` over channels (stain).
        margin (int): Erosion size keeping blank regions away from cells.

    Returns:
        np.ndarray: bool mask ``[H, W]``.
    """
    gray = cv2.cvtColor(field_img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (win, win))
    std = np.sqrt(np.maximum(cv2.blur(gray * gray, (win, win)) - mean * mean, 0))
    chroma = field_img.max(2).astype(np.int16) - field_img.min(2)
    blank = (std < max_std) & (gray > min_gray) & (chroma < max_chroma)
    blank = cv2.erode(blank.astype(np.uint8), np.ones((margin, margin), np.uint8))
    return blank.astype(bool)


def find_blank_patches(mask: np.ndarray, patch: int, stride: int = 16
                       ) -> np.ndarray:
    """Top-left corners of all ``patch x patch`` windows that are fully blank.

    Args:
        mask (np.ndarray): bool blank mask ``[H, W]``.
        patch (int): Window side.
        stride (int): Grid step of the candidate corners.

    Returns:
        np.ndarray: int ``[N, 2]`` of ``(y, x)`` corners.
    """
    h, w = mask.shape
    if h < patch or w < patch:
        return np.zeros((0, 2), dtype=int)
    integral = cv2.integral((~mask).astype(np.uint8))  # [H+1, W+1] int32
    ys, xs = np.arange(0, h - patch + 1, stride), np.arange(0, w - patch + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing='ij')
    non_blank = (integral[yy + patch, xx + patch] - integral[yy, xx + patch]
                 - integral[yy + patch, xx] + integral[yy, xx])
    return np.stack([yy[non_blank == 0], xx[non_blank == 0]], axis=1)


@dataclass
class BackgroundBank:
    """Blank patches of a real field, and its median blank colour.

    Args:
        field_img (np.ndarray): BGR field image ``[H, W, 3]``.
        corners (np.ndarray): ``[N, 2]`` top-left ``(y, x)`` of blank patches.
        patch (int): Patch side.
        colour (np.ndarray): float32 ``[3]`` median BGR colour of blank glass.
    """

    field_img: np.ndarray
    corners: np.ndarray
    patch: int
    colour: np.ndarray = field(default_factory=lambda: np.full(3, 245, np.float32))


@functools.lru_cache(maxsize=2)
def load_background_bank(field_path: Path,
                         patch_sizes: Sequence[int] = (192, 128, 96, 64),
                         min_patches: int = 200) -> BackgroundBank:
    """Read a real field and index its blank patches.

    Args:
        field_path (Path): Field of view image (e.g. ``tct_field/*.jpg``).
        patch_sizes (Sequence[int]): Patch sides to try, largest first; the
            first with at least ``min_patches`` blank windows is used.
        min_patches (int): Fewest blank windows accepted.

    Returns:
        BackgroundBank: The field, the blank patch corners and blank colour
        (cached: repeated builds in one process read the field once; the
        bank is never modified).
    """
    img = cv2.imread(str(field_path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read background field {field_path}')
    mask = blank_mask(img)
    if mask.sum() < 1000:
        raise RuntimeError(f'no blank glass found in {field_path}')
    colour = np.median(img[mask], axis=0).astype(np.float32)
    for p in patch_sizes:
        corners = find_blank_patches(mask, p)
        if len(corners) >= min_patches:
            return BackgroundBank(img, corners, p, colour)
    raise RuntimeError(f'fewer than {min_patches} blank patches of '
                       f'{patch_sizes[-1]} px in {field_path}')


def _feather_window(patch: int, overlap: int) -> np.ndarray:
    """2-D blending weight ``[P, P]`` ramping up over ``overlap`` px at the edges."""
    x = np.arange(patch, dtype=np.float32)
    ramp = np.clip((np.minimum(x, patch - 1 - x) + 1) / (overlap + 1), 1e-3, 1.0)
    return np.outer(ramp, ramp)


def low_frequency_gain(size: int, rng: np.random.Generator, amp: float,
                       grid: int = 4) -> np.ndarray:
    """Smooth random illumination gain ``[size, size]`` around 1.

    Args:
        size (int): Output side.
        rng (np.random.Generator): Random generator.
        amp (float): Std of the gain at the ``grid x grid`` control points.
        grid (int): Number of control points per side.

    Returns:
        np.ndarray: float32 ``[size, size]``.
    """
    coarse = rng.normal(1.0, amp, size=(grid, grid)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def quilt_background(bank: BackgroundBank, size: int,
                     rng: np.random.Generator, illum_amp: float = 0.01
                     ) -> np.ndarray:
    """Compose a ``size x size`` glass background from random blank patches.

    Patches are laid on an overlapping grid, randomly flipped/rotated,
    colour-normalised to one glass colour per image (so the field's own
    illumination gradient does not show as blotches) and averaged with
    feathered weights so no seam is visible; a smooth illumination is added.

    Args:
        bank (BackgroundBank): Blank patches of a real field.
        size (int): Output side in pixels.
        rng (np.random.Generator): Random generator.
        illum_amp (float): Std of the low-frequency illumination gain.

    Returns:
        np.ndarray: BGR uint8 ``[size, size, 3]``.
    """
    p = bank.patch
    overlap = max(8, p // 4)
    step = p - overlap
    n = max(1, int(np.ceil((size - overlap) / step)))
    span = max(size, p)
    starts = np.linspace(0, span - p, n).round().astype(int) if n > 1 else np.array([0])
    weight = _feather_window(p, overlap)[..., None]
    acc = np.zeros((span, span, 3), np.float32)
    wsum = np.zeros((span, span, 1), np.float32)
    picks = rng.integers(0, len(bank.corners), size=(n, n))
    rots, flips = rng.integers(0, 4, size=(n, n)), rng.integers(0, 2, size=(n, n))
    target = (bank.colour * rng.normal(1.0, 0.008, size=3)).astype(np.float32)
    for i, y in enumerate(starts):
        for j, x in enumerate(starts):
            cy, cx = bank.corners[picks[i, j]]
            tile = bank.field_img[cy:cy + p, cx:cx + p]
            tile = np.rot90(tile[:, ::-1] if flips[i, j] else tile, rots[i, j])
            mean = np.asarray(cv2.mean(np.ascontiguousarray(tile))[:3], np.float32)
            gain = target / np.maximum(mean, 1.0)
            acc[y:y + p, x:x + p] += tile * (weight * gain)
            wsum[y:y + p, x:x + p] += weight
    scale = low_frequency_gain(size, rng, illum_amp) / np.maximum(
        wsum[:size, :size, 0], 1e-6)
    return cv2.convertScaleAbs(acc[:size, :size] * scale[..., None])  # round, clip


def paper_background(colour: np.ndarray, size: int, rng: np.random.Generator,
                     illum_amp: float = 0.01, noise_std: float = 1.2
                     ) -> np.ndarray:
    """Smooth paper-white background: blank colour x illumination + noise.

    Args:
        colour (np.ndarray): float ``[3]`` BGR base colour.
        size (int): Output side in pixels.
        rng (np.random.Generator): Random generator.
        illum_amp (float): Std of the low-frequency illumination gain.
        noise_std (float): Std of the fine (pixel) noise in grey levels.

    Returns:
        np.ndarray: BGR uint8 ``[size, size, 3]``.
    """
    illum = low_frequency_gain(size, rng, illum_amp)
    noise = rng.normal(0, noise_std, size=(size, size, 1)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (3, 3), 0.6)[..., None] + rng.normal(
        0, noise_std * 0.4, size=(size, size, 3)).astype(np.float32)
    img = np.asarray(colour, np.float32)[None, None] * illum[..., None] + noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------
# Cells: masks and pasting
# ----------------------------------------------------------------------------
def crop_background_colour(crop: np.ndarray, min_gray: float = 170.0
                           ) -> Optional[np.ndarray]:
    """Colour of the glass around a cell in a crop (brightest 20 % pixels).

    Args:
        crop (np.ndarray): BGR uint8 ``[h, w, 3]``.
        min_gray (float): The estimate is rejected (``None``) when it is
            darker than this (the crop is all cell, no glass visible).

    Returns:
        np.ndarray | None: float32 ``[3]`` BGR colour, or ``None``.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2GRAY)
    cdf = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    thr = int(np.searchsorted(cdf, 0.8 * gray.size))  # 80th percentile grey
    colour = np.median(crop[gray >= thr], axis=0).astype(np.float32)
    return colour if colour.mean() >= min_gray else None


def soft_ellipse(h: int, w: int, power: float = 3.0, edge: float = 0.25
                 ) -> np.ndarray:
    """Feathered (super)ellipse inscribed in ``h x w``: 1 inside, 0 outside.

    ``|x|^p + |y|^p = 1`` with ``p = power`` (2 = ellipse, larger = closer
    to a rounded rectangle); alpha falls smoothly from 1 to 0 over ``edge``
    (relative radius) and is 0.5 at ``1 - edge / 2``.

    Args:
        h (int): Height.
        w (int): Width.
        power (float): Superellipse exponent.
        edge (float): Width of the soft border relative to the radius.

    Returns:
        np.ndarray: float32 ``[h, w]`` in ``[0, 1]``.
    """
    yy = np.abs((np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2))
    xx = np.abs((np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2))
    r = (yy[:, None] ** power + xx[None, :] ** power) ** (1.0 / power)
    t = np.clip((1.0 - r) / edge, 0.0, 1.0)
    return t * t * (3 - 2 * t)  # smoothstep


def _central_component(mask: np.ndarray) -> np.ndarray:
    """Connected component of ``mask`` at the centre (or nearest to it)."""
    n, labels, stats, cents = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    lab = labels[h // 2, w // 2]
    if lab == 0:
        # nearest component by its closest pixel to the centre
        ys, xs = np.nonzero(labels)
        k = np.argmin((ys - h / 2) ** 2 + (xs - w / 2) ** 2)
        lab = labels[ys[k], xs[k]]
    return labels == lab


def cell_alpha(crop: np.ndarray, min_fg: float = 0.08,
               dist_thr: float = 22.0) -> Tuple[np.ndarray, bool]:
    """Soft alpha mask of the cell at the centre of a crop.

    The cell is what differs from the crop's glass colour, closed and
    hole-filled, the component at the centre; it is cut by a feathered
    inscribed ellipse and blurred for a soft edge. When no glass is visible
    or the central object is tiny, the feathered ellipse alone is used.

    Args:
        crop (np.ndarray): BGR uint8 ``[h, w, 3]`` at its final size.
        min_fg (float): Smallest share of the crop the central object must
            cover to be used as the mask.
        dist_thr (float): Colour distance to the glass above which a pixel
            is cell.

    Returns:
        tuple: ``(alpha, from_foreground)``: float32 ``[h, w]`` in [0, 1] and
        whether the foreground mask (not the ellipse fallback) was used.
    """
    h, w = crop.shape[:2]
    ellipse = soft_ellipse(h, w)
    sigma = max(0.7, min(h, w) / 60)
    bg = crop_background_colour(crop)
    fg = None
    if bg is not None:
        dist = np.linalg.norm(crop.astype(np.float32) - bg, axis=2)
        k = max(3, (min(h, w) // 12) | 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        raw = cv2.morphologyEx((dist > dist_thr).astype(np.uint8),
                               cv2.MORPH_CLOSE, kernel)
        raw = cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        comp = ndi.binary_fill_holes(_central_component(raw))
        if comp.mean() >= min_fg:
            fg = cv2.GaussianBlur(comp.astype(np.float32), (0, 0), sigma)
    if fg is None:
        return ellipse, False
    return fg * ellipse, True


def crop_contrast(crop: np.ndarray) -> float:
    """Darkest-object contrast in the centre of a crop (grey levels).

    90th percentile grey level of the whole crop (glass or cytoplasm) minus
    the 2nd percentile of the blurred central window (nucleus). Crops
    without any dark object at the centre (only glass or cytoplasm) score
    low; CRIC crops of abnormal classes below ~40 rarely show a cell.

    Args:
        crop (np.ndarray): BGR uint8 ``[h, w, 3]``.

    Returns:
        float: Contrast in grey levels (0-255).
    """
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray = cv2.GaussianBlur(gray, (0, 0), 1.5)
    h, w = gray.shape
    centre = gray[h // 4: h - h // 4, w // 4: w - w // 4]
    return float(np.percentile(gray, 90) - np.percentile(centre, 2))


def mask_bbox(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Bounding box ``(x, y, w, h)`` of the true pixels of a mask.

    Args:
        mask (np.ndarray): bool ``[H, W]``.

    Returns:
        tuple[int, int, int, int] | None: COCO xywh box, ``None`` if empty.
    """
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y0, y1 = np.argmax(rows), len(rows) - np.argmax(rows[::-1])
    x0, x1 = np.argmax(cols), len(cols) - np.argmax(cols[::-1])
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def prepare_cell(crop: np.ndarray, cfg: MosaicConfig, rng: np.random.Generator,
                 target_colour: Optional[np.ndarray] = None
                 ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Augment, resize, white-balance and mask one crop for pasting.

    Args:
        crop (np.ndarray): BGR uint8 source crop.
        cfg (MosaicConfig): Build settings (scale range, size limits).
        rng (np.random.Generator): Random generator.
        target_colour (np.ndarray | None): BGR glass colour of the canvas; the
            crop's glass is gain-matched to it (gains limited to 0.8-1.25).

    Returns:
        tuple | None: ``(pixels, alpha)`` trimmed to the alpha support
        (uint8 ``[h, w, 3]``, float32 ``[h, w]``), or ``None`` if nothing
        visible remains.
    """
    crop = np.rot90(crop[:, ::-1] if rng.integers(2) else crop, rng.integers(4))
    h, w = crop.shape[:2]
    side = max(h, w) * rng.uniform(*cfg.crop_scale)
    side = float(np.clip(side, cfg.min_cell_size, cfg.max_cell_size))
    s = side / max(h, w)
    nh, nw = max(4, round(h * s)), max(4, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(crop), (nw, nh), interpolation=interp)
    if target_colour is not None:
        bg = crop_background_colour(crop)
        if bg is not None:
            gain = np.clip(target_colour / np.maximum(bg, 1), 0.8, 1.25)
            crop = np.clip(crop * gain + 0.5, 0, 255).astype(np.uint8)
    alpha, _ = cell_alpha(crop)
    box = mask_bbox(alpha > 0.02)
    if box is None or (alpha > 0.5).sum() < 16:
        return None
    x, y, bw, bh = box
    return crop[y:y + bh, x:x + bw], alpha[y:y + bh, x:x + bw]


def find_place(labels: np.ndarray, areas: List[int], mask: np.ndarray,
               rng: np.random.Generator, max_overlap: float,
               tries: int = 40) -> Optional[Tuple[int, int]]:
    """Rejection-sample a position where a cell mask overlaps little.

    Args:
        labels (np.ndarray): int32 occupancy map ``[H, W]`` (0 free, k = cell k).
        areas (list[int]): Mask area of each placed cell (index k - 1).
        mask (np.ndarray): bool mask ``[h, w]`` of the new cell.
        rng (np.random.Generator): Random generator.
        max_overlap (float): Largest covered share of the new cell and of any
            placed cell.
        tries (int): Number of random positions tried.

    Returns:
        tuple[int, int] | None: ``(x, y)`` of the top-left corner, or ``None``.
    """
    H, W = labels.shape
    h, w = mask.shape
    if h > H or w > W:
        return None
    area = max(1, int(mask.sum()))
    placed = np.asarray([1] + list(areas), dtype=np.float64)  # index 0 unused
    for _ in range(tries):
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        under = labels[y:y + h, x:x + w][mask]
        if not under.any():
            return x, y
        hits = np.bincount(under, minlength=len(placed))
        hits[0] = 0
        if hits.sum() <= max_overlap * area and np.all(hits <= max_overlap * placed):
            return x, y
    return None


def paste(canvas: np.ndarray, pixels: np.ndarray, alpha: np.ndarray,
          x: int, y: int) -> None:
    """Alpha-blend ``pixels`` onto ``canvas`` at ``(x, y)`` in place.

    Args:
        canvas (np.ndarray): BGR uint8 ``[H, W, 3]``.
        pixels (np.ndarray): BGR uint8 ``[h, w, 3]``.
        alpha (np.ndarray): float32 ``[h, w]``.
        x (int): Left column.
        y (int): Top row.
    """
    h, w = alpha.shape
    region = canvas[y:y + h, x:x + w].astype(np.float32)
    a = alpha[..., None]
    canvas[y:y + h, x:x + w] = np.clip(
        region * (1 - a) + pixels.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------
# Images and splits
# ----------------------------------------------------------------------------
class CropCache:
    """Reads crops once (BGR uint8) and remembers them.

    Args:
        data_root (Path): Root the crop paths are relative to.
    """

    def __init__(self, data_root: Path) -> None:
        self.data_root = Path(data_root)
        self._cache: Dict[Path, np.ndarray] = {}

    def __call__(self, path: Path) -> np.ndarray:
        """Return the crop at ``path``."""
        img = self._cache.get(path)
        if img is None:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise IOError(f'cannot read crop {path}')
            self._cache[path] = img
        return img


def usable_abnormal(pool: Dict[str, List[Path]], crops: CropCache,
                    min_contrast: float = 40.0
                    ) -> Tuple[Dict[str, List[Path]], List[Path]]:
    """Drop abnormal crops with no dark object (nucleus) at their centre.

    Such crops show only glass or cytoplasm (a share of the CRIC crops is
    off-centre); boxing them would teach the detector to fire on glass.

    Args:
        pool (dict[str, list[Path]]): Crops per class.
        crops (CropCache): Crop reader.
        min_contrast (float): Smallest :func:`crop_contrast` kept.

    Returns:
        tuple: ``(kept pool, dropped paths)``.
    """
    kept, dropped = {}, []
    for cls, paths in pool.items():
        keep = [crop_contrast(crops(p)) >= min_contrast for p in paths]
        kept[cls] = [p for p, k in zip(paths, keep) if k]
        dropped += [p for p, k in zip(paths, keep) if not k]
    return kept, dropped


def compose_image(cfg: MosaicConfig, pool: Dict, crops: CropCache,
                  bank: BackgroundBank, rng: np.random.Generator,
                  negative: bool) -> Tuple[np.ndarray, List[Dict]]:
    """Compose one image and its boxes.

    Abnormal cells are placed first (so the first always fits), then normal
    cells; normals are drawn first and abnormals on top, so annotated cells
    are never covered by unannotated ones.

    Args:
        cfg (MosaicConfig): Build settings.
        pool (dict): ``{'abnormal': {cls: [Path]}, 'normal': [Path]}`` of the
            split.
        crops (CropCache): Crop reader.
        bank (BackgroundBank): Background source.
        rng (np.random.Generator): Random generator of this image.
        negative (bool): Compose without abnormal cells.

    Returns:
        tuple: ``(image, cells)``: BGR uint8 ``[S, S, 3]`` and a list of
        ``{'category': name, 'bbox': [x, y, w, h], 'area': int,
        'source': Path}`` for every pasted cell, normal (``NILM``) ones
        included.
    """
    size = cfg.img_size
    if cfg.background == 'field':
        canvas = quilt_background(bank, size, rng)
    else:
        canvas = paper_background(bank.colour, size, rng)
    n_cells = int(rng.integers(cfg.cells_per_image[0], cfg.cells_per_image[1] + 1))
    n_abn = 0 if negative else max(1, int(round(cfg.abnormal_fraction * n_cells)))
    classes = [c for c, p in pool['abnormal'].items() if p]
    if n_abn and not classes:
        raise RuntimeError('no abnormal crops in this split; lower --split-ratios '
                           'imbalance or check --data-root')
    if cfg.class_sampling == 'proportional':
        prob = np.array([len(pool['abnormal'][c]) for c in classes], np.float64)
    else:
        prob = np.ones(len(classes))

    def pick_abnormal() -> Tuple[str, Path]:
        """Draw an abnormal class, then one of its crops."""
        cls = classes[rng.choice(len(classes), p=prob / prob.sum())]
        paths = pool['abnormal'][cls]
        return cls, paths[rng.integers(len(paths))]

    picks = [pick_abnormal() for _ in range(n_abn)]
    normals = pool['normal']
    picks += [(NORMAL_CLASS, normals[rng.integers(len(normals))])
              for _ in range(n_cells - n_abn)]

    labels = np.zeros((size, size), np.int32)
    areas: List[int] = []
    placed = []
    spare = 20  # replacement crops for a positive image whose first cell fails
    for cls, path in picks:  # (picks may grow while iterating)
        first_abnormal = cls != NORMAL_CLASS and not any(
            c != NORMAL_CLASS for c, *_ in placed)
        cell = prepare_cell(crops(path), cfg, rng, bank.colour)
        pos = None
        if cell is not None:
            pixels, alpha = cell
            solid = alpha > 0.5
            pos = find_place(labels, areas, solid, rng, cfg.max_overlap,
                             200 if first_abnormal else 40)
        if pos is None:
            if first_abnormal and spare > 0:  # a positive image keeps >= 1
                spare -= 1
                picks.append(pick_abnormal())
            continue
        x, y = pos
        areas.append(int(solid.sum()))
        labels[y:y + solid.shape[0], x:x + solid.shape[1]][solid] = len(areas)
        placed.append((cls, path, pixels, alpha, x, y))

    placed.sort(key=lambda c: c[0] != NORMAL_CLASS)  # normals drawn first
    cells = []
    for cls, path, pixels, alpha, x, y in placed:
        paste(canvas, pixels, alpha, x, y)
        bx, by, bw, bh = mask_bbox(alpha > 0.5)
        cells.append(dict(category=cls, bbox=[x + bx, y + by, bw, bh],
                          area=int((alpha > 0.5).sum()), source=path))
    return canvas, cells


def negative_flags(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Which of ``n`` images are negatives (no abnormal cell).

    At least one negative and one positive when ``n >= 2`` and the fraction
    is strictly between 0 and 1.

    Args:
        n (int): Number of images.
        fraction (float): Wanted share of negatives.
        rng (np.random.Generator): Random generator.

    Returns:
        np.ndarray: bool ``[n]``.
    """
    k = int(round(fraction * n))
    if n >= 2 and 0 < fraction < 1:
        k = min(max(k, 1), n - 1)
    flags = np.zeros(n, bool)
    flags[rng.permutation(n)[:k]] = True
    return flags


def build_split(cfg: MosaicConfig, split: str, pool: Dict, crops: CropCache,
                bank: BackgroundBank, img_dir: Path,
                bar: Optional[tqdm] = None) -> Dict:
    """Compose and write all images of one split; return its COCO dict.

    Args:
        cfg (MosaicConfig): Build settings.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        pool (dict): Source crops of the split.
        crops (CropCache): Crop reader.
        bank (BackgroundBank): Background source.
        img_dir (Path): Folder the images are written to.
        bar (tqdm | None): Progress bar advanced once per image.

    Returns:
        tuple: ``(coco, used)``: the COCO detection dict (``images``,
        ``annotations``, ``categories``, ``file_name`` relative to
        ``img_dir``) and the set of crop paths pasted in this split.
    """
    names = class_names(cfg)
    cat_id = {c: i + 1 for i, c in enumerate(names)}
    n = cfg.num_images(split)
    split_idx = SPLITS.index(split)
    negatives = negative_flags(n, cfg.negative_fraction,
                               np.random.default_rng([cfg.seed, split_idx, 104729]))
    coco = dict(images=[], annotations=[],
                categories=[dict(id=cat_id[c], name=c) for c in names])
    img_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_idx, i])
        img, cells = compose_image(cfg, pool, crops, bank, rng, bool(negatives[i]))
        file_name = f'{cfg.source}_{split}_{i:05d}.jpg'
        if not cv2.imwrite(str(img_dir / file_name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise IOError(f'cannot write {img_dir / file_name}')
        coco['images'].append(dict(id=i + 1, file_name=file_name, width=cfg.img_size,
                                   height=cfg.img_size, negative=bool(negatives[i])))
        used.update(c['source'] for c in cells)
        for c in cells:
            if c['category'] == NORMAL_CLASS and not cfg.annotate_normal:
                continue
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=i + 1,
                category_id=cat_id[c['category']], bbox=c['bbox'], area=c['area'],
                iscrowd=0))
        if bar is not None:
            bar.update(1)
    return coco, used


def _prepare_out_dir(out_dir: Path, overwrite: bool,
                     flag: str = '--overwrite (overwrite=True)') -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``; then clear our
    files (``images/``, ``annotations/``, ``meta.json``). ``flag`` names the
    option that allows it in the error message."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} is not empty; refusing to overwrite it. Pass '
                f'{flag} to replace a previous build, or choose another '
                '--out-dir.')
        for sub in ('images', 'annotations'):
            if (out_dir / sub).is_dir():
                shutil.rmtree(out_dir / sub)
        (out_dir / 'meta.json').unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a posix string."""
    return Path(path).resolve().relative_to(root).as_posix()


def build_mosaic_dataset(out_dir, data_root=DEFAULT_DATA_ROOT,
                         source: str = 'bethesda', preset: str = '512',
                         overwrite: bool = False, progress: bool = True,
                         **overrides) -> Dict:
    """Build a full mosaic data set (all three splits) and its ``meta.json``.

    Args:
        out_dir (str | Path): Output folder (must be empty or absent unless
            ``overwrite``).
        data_root (str | Path): Shared data folder with the real crops.
        source (str): ``'bethesda'`` or ``'tct11'``.
        preset (str): ``'512'`` or ``'1024'`` (defaults of the settings).
        overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show progress bars.
        **overrides: :class:`MosaicConfig` fields (e.g. ``num_train=4``,
            ``img_size=256``, ``background='paper'``, ``seed=1``).

    Returns:
        dict: ``{'out_dir', 'meta', 'annotations': {split: Path},
        'images': {split: Path}}``.
    """
    t0 = time.time()
    cfg = make_config(source, preset, **overrides)
    data_root, out_dir = Path(data_root).resolve(), Path(out_dir).resolve()
    if out_dir == data_root or data_root in out_dir.parents:
        raise ValueError(f'--out-dir {out_dir} is inside --data-root {data_root}; '
                         'write the mosaic elsewhere (the shared data stays read-only)')
    abnormal, normal = list_source_crops(data_root, cfg.source)
    bank = load_background_bank(data_root / FIELD_FILE)
    _prepare_out_dir(out_dir, overwrite)
    pools = split_source_crops(abnormal, normal, cfg.split_ratios, cfg.seed)
    crops = CropCache(data_root)

    result = dict(out_dir=out_dir, meta=out_dir / 'meta.json', annotations={},
                  images={})
    counts, dropped, used = {}, {}, {}
    (out_dir / 'annotations').mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=sum(cfg.num_images(s) for s in SPLITS), unit='img',
               desc=f'mosaic {cfg.source}-{cfg.preset}', disable=not progress)
    for split in SPLITS:
        pool = dict(pools[split])
        pool['abnormal'], dropped[split] = usable_abnormal(
            pool['abnormal'], crops, cfg.min_crop_contrast)
        if cfg.annotate_normal:  # boxed normals need a visible cell too
            kept, lost = usable_abnormal({NORMAL_CLASS: pool['normal']}, crops,
                                         cfg.min_crop_contrast)
            pool['normal'], dropped[split] = kept[NORMAL_CLASS], dropped[split] + lost
        img_dir = out_dir / 'images' / split
        coco, used_paths = build_split(cfg, split, pool, crops, bank, img_dir, bar)
        used[split] = sorted(_rel(p, data_root) for p in used_paths)
        ann_file = out_dir / 'annotations' / f'{split}.json'
        ann_file.write_text(json.dumps(coco))
        result['annotations'][split], result['images'][split] = ann_file, img_dir
        counts[split] = _split_counts(coco)
    bar.close()

    meta = dict(
        tool='tools/dataset_converters/build_mosaic.py',
        note=('Detection images composed from real cell crops; the crops are '
              'real, the composition (placement, background, scale) is synthetic.'),
        config=asdict(cfg), data_root=str(data_root),
        classes=list(class_names(cfg)),
        background_field=FIELD_FILE, background_patch=bank.patch,
        background_colour_bgr=[round(float(c), 1) for c in bank.colour],
        crops={s: dict(abnormal={c: [_rel(p, data_root) for p in ps]
                                 for c, ps in pools[s]['abnormal'].items()},
                       normal=[_rel(p, data_root) for p in pools[s]['normal']])
               for s in SPLITS},
        used_crops=used,
        dropped_low_contrast_crops={s: [_rel(p, data_root) for p in dropped[s]]
                                    for s in SPLITS},
        counts=counts, build_seconds=round(time.time() - t0, 2))
    result['meta'].write_text(json.dumps(meta, indent=1))
    return result


def _split_counts(coco: Dict) -> Dict:
    """Images, negatives and boxes per class of one COCO split dict."""
    id_to_name = {c['id']: c['name'] for c in coco['categories']}
    per_class = {n: 0 for n in id_to_name.values()}
    for a in coco['annotations']:
        per_class[id_to_name[a['category_id']]] += 1
    return dict(images=len(coco['images']),
                negatives=sum(bool(i.get('negative')) for i in coco['images']),
                boxes=len(coco['annotations']), boxes_per_class=per_class)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``None`` values mean "preset default")."""
    p = argparse.ArgumentParser(
        description='Compose detection images from real cervical cell crops '
                    '(crops real, composition synthetic).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-root', type=Path, default=DEFAULT_DATA_ROOT,
                   help='shared data folder with the real crops')
    p.add_argument('--source', choices=('bethesda', 'tct11'), default='bethesda',
                   help='bethesda: CRIC abnormal crops (5 classes); tct11: '
                        'ComparisonDetector crops (11 classes); normals: CRIC NILM')
    p.add_argument('--out-dir', type=Path, required=True, help='output folder')
    p.add_argument('--preset', choices=sorted(PRESETS), default='512',
                   help='defaults: ' + '; '.join(
                       f'{k}: {v}' for k, v in PRESETS.items()))
    p.add_argument('--img-size', type=int, help='image side (px)')
    p.add_argument('--cells-per-image', type=int, nargs=2, metavar=('MIN', 'MAX'))
    p.add_argument('--abnormal-fraction', type=float,
                   help='share of cells of a positive image that are abnormal (0.3)')
    p.add_argument('--negative-fraction', type=float,
                   help='share of images with no abnormal cell, per split (0.2)')
    p.add_argument('--num-train', type=int)
    p.add_argument('--num-val', type=int)
    p.add_argument('--num-test', type=int)
    p.add_argument('--split-ratios', type=float, nargs=3,
                   metavar=('TRAIN', 'VAL', 'TEST'),
                   help='per-class split of the source crops (0.7 0.15 0.15)')
    p.add_argument('--crop-scale', type=float, nargs=2, metavar=('LO', 'HI'),
                   help='random resize factor range of a crop')
    p.add_argument('--min-cell-size', type=int, help='smallest pasted max-side (px)')
    p.add_argument('--max-cell-size', type=int, help='largest pasted max-side (px)')
    p.add_argument('--max-overlap', type=float,
                   help='largest share of a cell another cell may cover (0.1)')
    p.add_argument('--min-crop-contrast', type=float,
                   help='drop abnormal crops with no dark object of this '
                        'contrast at the centre (40)')
    p.add_argument('--background', choices=('field', 'paper'),
                   help='field: quilted real blank glass (default); paper: '
                        'smooth paper-white of the field colour')
    p.add_argument('--class-sampling', choices=('uniform', 'proportional'))
    p.add_argument('--annotate-normal', action='store_true', default=None,
                   help='also box normal cells as class NILM')
    p.add_argument('--seed', type=int)
    p.add_argument('--jpeg-quality', type=int)
    p.add_argument('--overwrite', action='store_true',
                   help='replace a previous build in a non-empty --out-dir')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    overrides = {k: v for k, v in vars(args).items()
                 if k not in ('data_root', 'source', 'out_dir', 'preset', 'overwrite')}
    try:
        res = build_mosaic_dataset(args.out_dir, args.data_root, args.source,
                                   args.preset, overwrite=args.overwrite, **overrides)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    meta = json.loads(res['meta'].read_text())
    print(f"built {res['out_dir']} in {meta['build_seconds']} s")
    for split, c in meta['counts'].items():
        print(f"  {split:5s}: {c['images']} images ({c['negatives']} negative), "
              f"{c['boxes']} boxes {c['boxes_per_class']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
