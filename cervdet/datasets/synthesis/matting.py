"""Cell matting: soft alpha masks of the cell at the centre of a crop, the
crop's glass colour and contrast, and mask boxes."""
from typing import Optional, Tuple

import cv2
import numpy as np
from scipy import ndimage as ndi


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


__all__ = [
    'crop_background_colour', 'soft_ellipse', 'cell_alpha', 'crop_contrast',
    'mask_bbox'
]
