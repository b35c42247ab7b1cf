"""Placing cells on a canvas: augment and mask a crop, find a free position,
alpha-blend it."""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .config import MosaicConfig
from .matting import cell_alpha, crop_background_colour, mask_bbox


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
    return balance_and_matte(crop, target_colour)


def balance_and_matte(crop: np.ndarray,
                      target_colour: Optional[np.ndarray] = None
                      ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """White-balance a (resized) crop to the canvas glass and cut its cell out.

    Args:
        crop (np.ndarray): BGR uint8 ``[h, w, 3]``.
        target_colour (np.ndarray | None): BGR glass colour of the canvas; the
            crop's glass is gain-matched to it (gains limited to 0.8-1.25).

    Returns:
        tuple | None: ``(pixels, alpha)`` trimmed to the alpha support
        (uint8 ``[h', w', 3]``, float32 ``[h', w']``), or ``None`` if less
        than 16 solid pixels remain.
    """
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


def paste_cells(canvas: np.ndarray, placed: Sequence[Tuple],
                normal_class: str) -> List[Dict]:
    """Paste placed cells (normal ones first, the others on top) and box them.

    Args:
        canvas (np.ndarray): BGR uint8 ``[H, W, 3]``, changed in place.
        placed (Sequence[tuple]): ``(class, source path, pixels, alpha, x,
            y)`` per cell, in placing order.
        normal_class (str): Class drawn first (under the others).

    Returns:
        list[dict]: ``{'category', 'bbox': [x, y, w, h] of the solid alpha
        (> 0.5), 'area': solid pixels, 'source'}`` per cell, in drawing
        order.
    """
    cells = []
    for cls, path, pixels, alpha, x, y in sorted(
            placed, key=lambda c: c[0] != normal_class):
        paste(canvas, pixels, alpha, x, y)
        bx, by, bw, bh = mask_bbox(alpha > 0.5)
        cells.append(dict(category=cls, bbox=[x + bx, y + by, bw, bh],
                          area=int((alpha > 0.5).sum()), source=path))
    return cells


__all__ = ['prepare_cell', 'balance_and_matte', 'find_place', 'paste',
           'paste_cells']
