"""Glass backgrounds of mosaics: blank patches of a real field, quilted, or a
smooth paper-white of the field's blank colour."""
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


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


__all__ = [
    'blank_mask', 'find_blank_patches', 'BackgroundBank',
    'load_background_bank', 'low_frequency_gain', 'quilt_background',
    'paper_background'
]
