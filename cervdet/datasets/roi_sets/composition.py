"""Composing one ROI from real cell crops: free places, trimmed crops, the
cell plan of an ROI class and the composition itself."""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from cervdet.datasets.classes import CELL_TO_ROI_CLASS, NORMAL_CLASS, ROI_CLASSES
from cervdet.datasets.synthesis import (
    BackgroundBank,
    CropCache,
    balance_and_matte,
    paper_background,
    paste_cells,
    quilt_background,
)

from .config import ROISetConfig
from .labels import roi_label_of


def free_positions(occupied: np.ndarray, h: int, w: int, max_cover: float,
                   stride: int = 4) -> np.ndarray:
    """All top-left corners where an ``h x w`` box covers few occupied pixels.

    Vectorised with an integral image over a grid of candidate corners.

    Args:
        occupied (np.ndarray): bool ``[H, W]`` pixels of placed cells.
        h (int): Box height.
        w (int): Box width.
        max_cover (float): Largest share of the box's ``h * w`` pixels that
            may be occupied.
        stride (int): Grid step of the candidates.

    Returns:
        np.ndarray: int ``[K, 2]`` of ``(y, x)`` corners (``K`` may be 0).
    """
    H, W = occupied.shape
    if h > H or w > W:
        return np.zeros((0, 2), dtype=np.int64)
    integral = cv2.integral(occupied.astype(np.uint8))  # [H+1, W+1]
    ys = np.arange(0, H - h + 1, stride)
    xs = np.arange(0, W - w + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing='ij')
    cover = (integral[yy + h, xx + w] - integral[yy, xx + w]
             - integral[yy + h, xx] + integral[yy, xx])
    ok = cover <= max_cover * h * w
    return np.stack([yy[ok], xx[ok]], axis=1).astype(np.int64)


def trim_uniform_border(img: np.ndarray, max_std: float = 4.0,
                        min_keep: float = 0.3) -> np.ndarray:
    """Cut uniform bars (letterboxing) off the edges of a crop.

    Leading / trailing rows and columns whose grey-level standard deviation
    is at most ``max_std`` are removed (vectorised over rows and columns).

    Args:
        img (np.ndarray): BGR uint8 ``[h, w, 3]``.
        max_std (float): Largest grey std of a row / column counted as a bar.
        min_keep (float): If less than this share of the height or width
            would remain, the crop is returned unchanged.

    Returns:
        np.ndarray: BGR uint8 ``[h', w', 3]`` (a view of ``img``).
    """
    gray = cv2.cvtColor(np.ascontiguousarray(img),
                        cv2.COLOR_BGR2GRAY).astype(np.float32)
    rows = np.flatnonzero(gray.std(axis=1) > max_std)
    cols = np.flatnonzero(gray.std(axis=0) > max_std)
    h, w = gray.shape
    if len(rows) == 0 or len(cols) == 0:
        return img
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if y1 - y0 < min_keep * h or x1 - x0 < min_keep * w:
        return img
    return img[y0:y1, x0:x1]


class TrimmedCropCache(CropCache):
    """:class:`cervdet.datasets.synthesis.CropCache` returning crops without letterbox
    bars (:func:`trim_uniform_border`)."""

    def __call__(self, path: Path) -> np.ndarray:
        """Return the trimmed crop at ``path`` (trimmed once, cached)."""
        img = self._cache.get(path)
        if img is None:
            img = np.ascontiguousarray(trim_uniform_border(super().__call__(
                path)))
            self._cache[path] = img
        return img


def _groups(pool: Dict[str, List[Path]],
            mapping: Dict[str, str] = CELL_TO_ROI_CLASS
            ) -> Dict[str, List[str]]:
    """Cell classes with crops in ``pool``, per ROI class."""
    groups = {r: [] for r in ROI_CLASSES}
    for cls, paths in pool.items():
        if paths:
            groups[mapping[cls]].append(cls)
    return groups


def _prepare(crop: np.ndarray, cfg: ROISetConfig, rng: np.random.Generator,
             colour: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Flip/rotate, rescale, white-balance and mask one crop."""
    crop = np.rot90(crop[:, ::-1] if rng.integers(2) else crop,
                    rng.integers(4))
    h, w = crop.shape[:2]
    s = rng.uniform(*cfg.crop_scale)
    nh, nw = max(8, round(h * s)), max(8, round(w * s))
    crop = cv2.resize(np.ascontiguousarray(crop), (nw, nh),
                      interpolation=cv2.INTER_AREA if s < 1 else
                      cv2.INTER_LINEAR)
    return balance_and_matte(crop, colour)


def _cell_plan(cfg: ROISetConfig, label: str, groups: Dict[str, List[str]],
               rng: np.random.Generator) -> List[str]:
    """Cell classes of one ROI of class ``label`` (label-setting cell first)."""
    n = int(rng.integers(cfg.cells_per_roi[0], cfg.cells_per_roi[1] + 1))
    if label == 'NILM':
        return ['NILM'] * n
    frac = rng.uniform(*cfg.abnormal_fraction)
    n_abn = int(min(n, max(1, round(frac * n))))
    plan = [groups[label][rng.integers(len(groups[label]))]]
    for _ in range(n_abn - 1):
        group = label
        if label == 'HSIL' and groups['LSIL'] and \
                rng.random() < cfg.low_grade_in_hsil:
            group = 'LSIL'
        plan.append(groups[group][rng.integers(len(groups[group]))])
    return plan + ['NILM'] * (n - n_abn)


def compose_roi(cfg: ROISetConfig, label: str, pool: Dict[str, List[Path]],
                crops: CropCache, bank: BackgroundBank,
                rng: np.random.Generator,
                mapping: Dict[str, str] = CELL_TO_ROI_CLASS
                ) -> Tuple[np.ndarray, List[Dict]]:
    """Compose one ROI of class ``label`` and its cells.

    The label-setting abnormal cell is placed first (retried with other
    crops until it fits), then the other abnormal and the normal cells;
    cells that find no free place are left out, so the ROI label is
    recomputed from the cells placed (:func:`roi_label_of`) and checked.

    Returns:
        tuple: ``(image, cells)``: BGR uint8 ``[S, S, 3]`` and a list of
        ``{'category': cell class, 'bbox': [x, y, w, h], 'area': int,
        'source': Path}``.
    """
    size = cfg.roi_size
    canvas = (quilt_background(bank, size, rng) if cfg.background == 'field'
              else paper_background(bank.colour, size, rng))
    groups = _groups(pool, mapping)
    plan = _cell_plan(cfg, label, groups, rng)
    occupied = np.zeros((size, size), bool)
    placed = []
    for k, cls in enumerate(plan):
        for attempt in range(40 if k == 0 else 1):
            if attempt:  # another crop of the label-setting group
                cls = groups[label][rng.integers(len(groups[label]))] \
                    if label != 'NILM' else 'NILM'
            paths = pool[cls]
            path = paths[rng.integers(len(paths))]
            cell = _prepare(crops(path), cfg, rng, bank.colour)
            if cell is None:
                continue
            pixels, alpha = cell
            h, w = alpha.shape
            free = free_positions(occupied, h, w, cfg.max_overlap)
            if len(free) == 0:
                continue
            y, x = free[rng.integers(len(free))]
            solid = alpha > 0.5
            occupied[y:y + h, x:x + w] |= solid
            placed.append((cls, path, pixels, alpha, int(x), int(y)))
            break
        else:
            if k == 0:
                raise RuntimeError(
                    f'could not place a single {label} cell in a {size} px '
                    'ROI; lower --crop-scale or raise --roi-size')
    # normal cells are drawn first, abnormal ones on top
    cells = paste_cells(canvas, placed, NORMAL_CLASS)
    got = roi_label_of([c['category'] for c in cells], mapping)
    if got != label:  # cannot happen: the first cell sets the label
        raise RuntimeError(f'ROI composed as {label} holds cells of {got}')
    return canvas, cells


__all__ = ['free_positions', 'trim_uniform_border', 'TrimmedCropCache',
           'compose_roi']
