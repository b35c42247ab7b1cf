"""Stain, texture and blob maps of a cytology image: the raw material of the
cell-candidate proposals (:func:`cervdet.datasets.proposals.generate_proposals`).

Objects are stained cells on bright glass: the glass colour is estimated
(global bright percentile, or a local brightness envelope); every pixel's
optical density ``OD = log(glass / pixel)`` per channel gives a *cell map*
(largest channel OD: stained cytoplasm of any colour) and, by colour
deconvolution (Ruifrok & Johnston, 2001), a *hematoxylin map* (nuclei). A
*texture map* (local grey standard deviation over the glass's noise level)
finds faint but textured cells. :func:`blob_boxes` boxes the connected blobs
of such a map at several levels, closings and erosions.
"""
from typing import Sequence, Tuple

import cv2
import numpy as np

#: Stain vectors (rows: hematoxylin, eosin, DAB) in RGB optical density,
#: Ruifrok & Johnston (2001), as in ``skimage.color.hed_from_rgb``.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29],
                         [0.07, 0.99, 0.11],
                         [0.27, 0.57, 0.78]], dtype=np.float32)


def glass_colour(img: np.ndarray, percentile: float = 90.0,
                 window: int = 0) -> np.ndarray:
    """Colour of the glass (background) per pixel or for the whole image.

    Args:
        img (np.ndarray): BGR uint8 ``[H, W, 3]``.
        percentile (float): Grey-level percentile above which pixels count
            as glass (global estimate: their median colour).
        window (int): If > 0, a local estimate: the bright envelope (max
            filter of a blurred, downscaled image) over windows of this size.

    Returns:
        np.ndarray: float32 ``[3]`` (global) or ``[H, W, 3]`` (local).
    """
    if window <= 0:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        cdf = np.cumsum(np.bincount(gray.ravel(), minlength=256))
        thr = int(np.searchsorted(cdf, percentile / 100. * gray.size))
        sel = gray >= min(thr, int(gray.max()))
        return np.median(img[sel], axis=0).astype(np.float32)
    h, w = img.shape[:2]
    f = max(1, window // 32)  # ~32 px of envelope window after downscaling
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)),
                       interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    k = max(3, (window // f) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    env = cv2.dilate(small, kernel)
    env = cv2.blur(env, (k, k))
    return cv2.resize(env, (w, h), interpolation=cv2.INTER_LINEAR)


def stain_maps(img: np.ndarray, percentile: float = 90.0,
               window: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Cell map and hematoxylin (nucleus) map of a BGR image.

    Args:
        img (np.ndarray): BGR uint8 ``[H, W, 3]``.
        percentile (float): See :func:`glass_colour`.
        window (int): See :func:`glass_colour`.

    Returns:
        tuple[np.ndarray, np.ndarray]: float32 ``[H, W]`` each: the largest
        per-channel optical density relative to the glass (cells of any
        stain), and the hematoxylin concentration by colour deconvolution
        (nuclei), both clipped at 0.
    """
    glass = glass_colour(img, percentile, window)
    od = np.log((glass + 1.) / (img.astype(np.float32) + 1.))  # [H, W, 3]
    np.maximum(od, 0, out=od)
    cell = od.max(axis=2)
    # OD (RGB order) = concentrations @ RGB_FROM_HED -> concentrations
    hed_from_rgb = np.linalg.inv(RGB_FROM_HED / np.linalg.norm(
        RGB_FROM_HED, axis=1, keepdims=True)).astype(np.float32)
    conc = od[..., ::-1].reshape(-1, 3) @ hed_from_rgb
    nucleus = np.maximum(conc[:, 0].reshape(cell.shape), 0)
    return cell, nucleus


def texture_map(img: np.ndarray, window: int = 7) -> np.ndarray:
    """Local grey-level standard deviation relative to the image's median.

    Glass is smooth; cytoplasm, chromatin and cell borders are textured, so
    even faint, barely stained cells stand out. Normalising by the median
    (the noise level of the glass that covers most of a field) makes the
    levels comparable across images.

    Args:
        img (np.ndarray): BGR uint8 ``[H, W, 3]``.
        window (int): Side of the box window (px).

    Returns:
        np.ndarray: float32 ``[H, W]``, ~1 on glass.
    """
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (window, window))
    var = cv2.blur(gray * gray, (window, window)) - mean * mean
    sd = np.sqrt(np.maximum(var, 0))
    return sd / max(float(np.median(sd)), 0.25)


def blob_boxes(value_map: np.ndarray, thrs: Sequence[float],
               close_sizes: Sequence[int], min_size: int,
               erode_radii: Sequence[int] = ()) -> np.ndarray:
    """Boxes of the connected blobs of a map at several levels and closings.

    Touching cells form one blob at every level; eroding a blob by ``r``
    cuts the necks between them, and the boxes of the eroded parts, grown
    back by ``r``, box the single cells.

    Args:
        value_map (np.ndarray): float32 ``[H, W]``.
        thrs (Sequence[float]): Levels; a blob is a connected set of pixels
            above one.
        close_sizes (Sequence[int]): Closing kernel sizes (<= 1: none).
        min_size (int): Blobs whose box has a side below this are dropped.
        erode_radii (Sequence[int]): Erosion radii (px) of the split parts
            (besides the blobs themselves).

    Returns:
        np.ndarray: float32 ``[N, 4]`` boxes ``(x1, y1, x2, y2)``.
    """
    out = []
    radii = [0] + [int(r) for r in erode_radii if r > 0]
    for thr in thrs:
        mask = (value_map > thr).astype(np.uint8)
        if not mask.any():
            continue
        for k in close_sizes:
            closed = mask
            if k > 1:
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
                closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
            for r in radii:
                m = closed
                if r:
                    m = cv2.erode(closed, cv2.getStructuringElement(
                        cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
                _, _, stats, _ = cv2.connectedComponentsWithStats(
                    m, connectivity=8)
                s = stats[1:].astype(np.float32)  # row 0: the background
                b = np.stack([s[:, 0] - r, s[:, 1] - r, s[:, 0] + s[:, 2] + r,
                              s[:, 1] + s[:, 3] + r], 1)
                keep = ((b[:, 2:] - b[:, :2]) >= min_size).all(axis=1)
                out.append(b[keep])
    if not out:
        return np.zeros((0, 4), np.float32)
    return np.unique(np.concatenate(out), axis=0)


__all__ = ['RGB_FROM_HED', 'glass_colour', 'stain_maps', 'texture_map',
           'blob_boxes']
