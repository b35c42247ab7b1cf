"""The cell-candidate proposal generator of one image.

1. Stain maps and blobs (:mod:`.stain_maps`): each map is thresholded at
   several levels, morphologically closed at several sizes (joins a
   fragmented cell) and eroded at several radii (splits touching cells);
   ``cv2.connectedComponentsWithStats`` gives one box per blob (a hierarchy
   of cells, clusters and cell parts).
2. Scores. A box scores high when the cell mass it holds is dense and not
   continued around it (``density * containment**2``, integral images); a
   pixel's mass is the share of the cell-map levels it exceeds (or its
   texture level), so a dark nucleus in a pale cytoplasm sheet still stands
   out.
3. Tiers, de-duplication, cap. Tier 1 are the blob boxes; tier 2 fills the
   room left up to ``max_per_img``: nucleus boxes grown about their centre
   (a cell is several times larger than its nucleus) and a jittered
   multi-scale set around the best tier-1 and grown boxes; tier 3
   (``windows``) a coarse multi-scale sliding-window set. Score =
   objectness in [0, 1] + (3 - tier), so a blob box outranks every box
   derived from it. Near-duplicates are removed on a relative box grid, then
   by NMS (``nms_iou``); the best ``max_per_img`` are kept, sorted by score
   (``LoadProposals(num_max_proposals=N)`` keeps the first N).
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

from .stain_maps import blob_boxes, stain_maps, texture_map


@dataclass
class ProposalConfig:
    """Settings of the cell-candidate generator.

    Args:
        max_per_img (int): Largest number of proposals kept per image.
        min_size (int): Smallest side of a proposal in pixels.
        cell_thrs (tuple[float]): Optical-density levels of the cell map.
        nucleus_thrs (tuple[float]): Levels of the hematoxylin map.
        texture_thrs (tuple[float]): Levels of the texture map (local grey
            standard deviation in multiples of the image's median, i.e. of
            its noise level): finds faint but textured cells.
        texture_window (int): Window of the local standard deviation (px).
        close_sizes (tuple[int]): Morphological closing sizes (px; 0/1 =
            none) applied to every thresholded map: closing joins the parts
            of a fragmented cell.
        erode_radii (tuple[int]): Erosion radii (px) that split touching
            cells (see :func:`blob_boxes`).
        nucleus_scales (tuple[float]): Factors by which nucleus boxes are
            expanded (about their centre, square-ish) into cell boxes.
        jitter_scales (tuple[float]): Size factors of the jittered set.
        jitter_shifts (tuple[float]): Centre shifts of the jittered set, as
            fractions of the box size.
        nms_iou (float): IoU above which the lower-scoring of two boxes is
            dropped (de-duplication; high keeps more near-duplicates).
        dedupe_step (float): Grid step of the near-duplicate removal before
            NMS (see :func:`dedupe_boxes`).
        pre_nms_factor (int): At most ``pre_nms_factor * max_per_img`` of
            the best boxes enter NMS (NMS is quadratic).
        windows (bool): Add a coarse multi-scale sliding-window set.
        window_stride (float): Stride of the windows as a fraction of their
            size.
        bg_percentile (float): Percentile of the grey level taken as glass
            (global background colour).
        bg_window (int): If > 0, estimate the glass colour locally (bright
            envelope over windows of this size, px) instead of globally:
            for fields with uneven illumination. Must exceed the largest
            cell.
        texture_saturation (float): Texture level (see ``texture_thrs``) at
            which a pixel counts as fully "cell" in the scores (<= 1: the
            scores ignore texture).
        context (float): Size factor of the surrounding box a proposal's
            cell mass is compared with (score).
    """

    max_per_img: int = 2000
    min_size: int = 8
    cell_thrs: Tuple[float, ...] = (0.03, 0.06, 0.1, 0.18, 0.3, 0.5)
    nucleus_thrs: Tuple[float, ...] = (0.15, 0.3, 0.5)
    texture_thrs: Tuple[float, ...] = (3., 6., 12.)
    texture_window: int = 7
    close_sizes: Tuple[int, ...] = (1, 7, 15)
    erode_radii: Tuple[int, ...] = (4, 8, 14)
    nucleus_scales: Tuple[float, ...] = (1.0, 2.0, 3.0, 4.5, 6.0)
    jitter_scales: Tuple[float, ...] = (0.8, 1.0, 1.25)
    jitter_shifts: Tuple[float, ...] = (-0.15, 0.0, 0.15)
    nms_iou: float = 0.85
    dedupe_step: float = 0.1
    pre_nms_factor: int = 3
    windows: bool = False
    window_stride: float = 0.5
    bg_percentile: float = 90.0
    bg_window: int = 0
    texture_saturation: float = 4.0
    context: float = 1.5


def scale_boxes(boxes: np.ndarray, scales: Sequence[float],
                square: bool = False) -> np.ndarray:
    """Boxes resized about their centre by each factor.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy.
        scales (Sequence[float]): Size factors.
        square (bool): Use the larger side for both sides first (nucleus
            boxes grow into roughly round cells).

    Returns:
        np.ndarray: float32 ``[N * len(scales), 4]``.
    """
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    if square:
        wh = np.repeat(wh.max(axis=1, keepdims=True), 2, axis=1)
    s = np.asarray(scales, np.float32)[:, None, None]  # [S, 1, 1]
    half = wh[None] * s / 2                            # [S, N, 2]
    return np.concatenate([c - half, c + half], axis=2).reshape(-1, 4)


def jitter_boxes(boxes: np.ndarray, scales: Sequence[float],
                 shifts: Sequence[float]) -> np.ndarray:
    """A jittered multi-scale set around every box.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy.
        scales (Sequence[float]): Size factors (width and height separately,
            so aspect ratios vary too).
        shifts (Sequence[float]): Centre shifts in x and y as fractions of
            the box width / height.

    Returns:
        np.ndarray: float32 ``[N * len(scales)**2 * len(shifts)**2, 4]``.
    """
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    s = np.asarray(scales, np.float32)
    d = np.asarray(shifts, np.float32)
    sw, sh, dx, dy = [g.ravel() for g in np.meshgrid(s, s, d, d,
                                                     indexing='ij')]
    fac = np.stack([sw, sh], 1)[:, None]                      # [J, 1, 2]
    off = np.stack([dx, dy], 1)[:, None] * wh[None]           # [J, N, 2]
    cc = c[None] + off
    half = wh[None] * fac / 2
    return np.concatenate([cc - half, cc + half], axis=2).reshape(-1, 4)


def sliding_windows(height: int, width: int, min_size: int,
                    stride: float = 0.5,
                    ratios: Sequence[float] = (0.67, 1.0, 1.5)) -> np.ndarray:
    """A coarse multi-scale, multi-aspect sliding-window set.

    Sizes grow by 1.5x from ``2 * min_size`` to half the shorter image side.

    Args:
        height (int): Image height.
        width (int): Image width.
        min_size (int): Smallest proposal side (px).
        stride (float): Stride as a fraction of the window size.
        ratios (Sequence[float]): Height / width ratios.

    Returns:
        np.ndarray: float32 ``[N, 4]`` xyxy.
    """
    out = []
    size = 2. * min_size
    while size <= min(height, width) / 2:
        for r in ratios:
            w, h = size / np.sqrt(r), size * np.sqrt(r)
            xs = np.arange(0, max(1., width - w + 1), stride * size)
            ys = np.arange(0, max(1., height - h + 1), stride * size)
            gx, gy = np.meshgrid(xs, ys)
            out.append(np.stack([gx.ravel(), gy.ravel(), gx.ravel() + w,
                                 gy.ravel() + h], 1))
        size *= 1.5
    if not out:
        return np.zeros((0, 4), np.float32)
    return np.concatenate(out).astype(np.float32)


def _box_sums(integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Sums of a map inside integer boxes from its integral image."""
    x1, y1, x2, y2 = boxes.T
    return (integral[y2, x2] - integral[y1, x2] - integral[y2, x1]
            + integral[y1, x1])


def box_scores(boxes: np.ndarray, mass: np.ndarray,
               context: float = 1.5) -> np.ndarray:
    """Objectness of boxes on a cell-mass map.

    ``score = density * containment**2`` with ``density`` the mean mass in
    the box and ``containment`` the share of the mass of the ``context``
    times larger box (same centre) that lies in the box: a tight box around
    an isolated cell scores high; a box cutting a cell (mass continues
    outside) or holding mostly glass (low density) scores low.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy inside the image.
        mass (np.ndarray): float32 ``[H, W]`` in [0, 1].
        context (float): Size factor of the surrounding box.

    Returns:
        np.ndarray: float32 ``[N]`` in [0, 1].
    """
    h, w = mass.shape
    integral = cv2.integral(mass, sdepth=cv2.CV_64F)
    lim = np.array([w, h, w, h])
    inner = np.clip(np.rint(boxes), 0, lim).astype(np.int64)
    outer = np.clip(np.rint(scale_boxes(boxes, [context])), 0,
                    lim).astype(np.int64)
    m_in = _box_sums(integral, inner)
    m_out = _box_sums(integral, outer)
    area = np.maximum((inner[:, 2] - inner[:, 0]) *
                      (inner[:, 3] - inner[:, 1]), 1)
    density = m_in / area
    containment = m_in / np.maximum(m_out, 1e-6)
    return (density * np.clip(containment, 0, 1) ** 2).astype(np.float32)


def dedupe_boxes(boxes: np.ndarray, scores: np.ndarray, step: float = 0.1
                 ) -> np.ndarray:
    """Best-scoring box of every cell of a relative (log-size) box grid.

    Boxes whose centres differ by less than ``step`` of their size and
    whose sides differ by less than a factor ``1 + step`` mostly share a
    cell (IoU ~> 0.8): near-duplicates are removed in ``O(N log N)`` before
    the exact NMS, which is quadratic.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy with positive sides.
        scores (np.ndarray): ``[N]``.
        step (float): Grid step, relative to the box size.

    Returns:
        np.ndarray: int64 indices of the kept boxes, by decreasing score.
    """
    wh = boxes[:, 2:] - boxes[:, :2]
    log_wh = np.floor(np.log(wh) / np.log1p(step))
    size = np.power(1 + step, log_wh + 0.5)  # the cell's size
    centre = np.floor((boxes[:, :2] + boxes[:, 2:]) / 2 / (step * size))
    cells = np.concatenate([log_wh, centre], 1).astype(np.int64)
    cells -= cells.min(axis=0)
    keys = np.ravel_multi_index(cells.T, cells.max(axis=0) + 1)
    order = np.argsort(-scores, kind='stable')
    _, first = np.unique(keys[order], return_index=True)
    return order[np.sort(first)]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float,
        max_num: int = -1) -> np.ndarray:
    """Greedy NMS (OpenCV's, in C++): indices kept, by decreasing score.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy.
        scores (np.ndarray): ``[N]``.
        iou_thr (float): Overlap above which a box is suppressed.
        max_num (int): Keep at most this many (-1: all).

    Returns:
        np.ndarray: int64 ``[K]`` indices into ``boxes``.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    # OpenCV drops scores <= score_threshold (which must be >= 0): shift
    # the scores so that none is dropped.
    shifted = scores.astype(np.float64) - float(scores.min()) + 1.
    # (its top_k limits the candidates, not the output: not used)
    keep = cv2.dnn.NMSBoxes(xywh.astype(np.float64).tolist(),
                            shifted.tolist(), 0., float(iou_thr))
    keep = np.asarray(keep, np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind='stable')]
    return keep[:max_num] if max_num > 0 else keep


def generate_proposals(img: np.ndarray, cfg: ProposalConfig = ProposalConfig()
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Cell-candidate proposals of one image (see the module docstring).

    Args:
        img (np.ndarray): BGR uint8 ``[H, W, 3]`` (grey images: ``[H, W]``).
        cfg (ProposalConfig): Generator settings.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``bboxes`` float32 ``[N, 4]``
        (x1, y1, x2, y2 in pixels, inside the image) and ``scores`` float32
        ``[N]`` in decreasing order (objectness in [0, 1] plus 2 for tier-1
        blob boxes, 1 for tier 2, 0 for windows), ``N <= cfg.max_per_img``.
    """
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    lim = np.array([w, h, w, h], np.float32)
    cell, nucleus = stain_maps(img, cfg.bg_percentile, cfg.bg_window)
    texture = texture_map(img, cfg.texture_window)
    # cell mass of the scores: share of the cell levels a pixel exceeds
    # (contrast-aware: a nucleus in a cytoplasm sheet stands out), or its
    # texture level if higher
    mass = np.mean([cell > t for t in cfg.cell_thrs], axis=0)
    if cfg.texture_saturation > 1:
        mass = np.maximum(mass, np.clip(
            (texture - 1.) / (cfg.texture_saturation - 1.), 0, 1))
    mass = mass.astype(np.float32)

    def scored(boxes: np.ndarray, bonus: float
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Clip candidates, drop small ones, score them (+ tier bonus)."""
        boxes = np.clip(np.rint(boxes), 0, lim)
        boxes = boxes[((boxes[:, 2:] - boxes[:, :2]) >=
                       cfg.min_size).all(axis=1)]
        return boxes, box_scores(boxes, mass, cfg.context) + bonus

    def select(boxes: np.ndarray, scores: np.ndarray, max_num: int
               ) -> Tuple[np.ndarray, np.ndarray]:
        """De-duplicate, then NMS: the best ``max_num``, by score."""
        if len(boxes) == 0 or max_num <= 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        keep = dedupe_boxes(boxes, scores, cfg.dedupe_step)
        keep = keep[:cfg.pre_nms_factor * max_num]
        keep = keep[nms(boxes[keep], scores[keep], cfg.nms_iou, max_num)]
        return boxes[keep], scores[keep]

    # tier 1 (scores in [2, 3]): cell / texture blobs
    blobs = [blob_boxes(cell, cfg.cell_thrs, cfg.close_sizes, cfg.min_size,
                        cfg.erode_radii)]
    if cfg.texture_thrs:
        blobs.append(blob_boxes(texture, cfg.texture_thrs, cfg.close_sizes,
                                cfg.min_size, cfg.erode_radii))
    boxes, scores = select(*scored(np.concatenate(blobs), 2.),
                           cfg.max_per_img)
    room = cfg.max_per_img - len(boxes)
    if room > 0:
        # tier 2 ([1, 2]): cells grown from nuclei and jittered sets around
        # the best blob and grown boxes (only as many parents as can fill
        # the room: on crowded fields the blobs alone fill it)
        nuclei = blob_boxes(nucleus, cfg.nucleus_thrs, cfg.close_sizes[:1],
                            max(2, cfg.min_size // 4))
        grown, _ = select(*scored(scale_boxes(
            nuclei, cfg.nucleus_scales, square=True), 1.), room)
        parents = np.concatenate([boxes, grown])[:max(1, room // 4)]
        parts = [(boxes, scores), scored(np.concatenate([grown, jitter_boxes(
            parents, cfg.jitter_scales, cfg.jitter_shifts)]), 1.)]
        if cfg.windows:  # tier 3 ([0, 1]): coarse windows
            parts.append(scored(sliding_windows(h, w, cfg.min_size,
                                                cfg.window_stride), 0.))
        boxes, scores = select(np.concatenate([p[0] for p in parts]),
                               np.concatenate([p[1] for p in parts]),
                               cfg.max_per_img)
    return boxes.astype(np.float32), scores.astype(np.float32)


__all__ = ['ProposalConfig', 'scale_boxes', 'jitter_boxes', 'sliding_windows',
           'box_scores', 'dedupe_boxes', 'nms', 'generate_proposals']
