"""Cell-candidate box proposals for weakly supervised detection (OICR).

OICR-style detectors classify a fixed set of candidate boxes per image; on
natural images these come from Selective Search or EdgeBoxes. Cytology fields
are simpler: objects are stained cells on bright glass, so candidates come
from colour and blob analysis:

1. Stain maps. The glass colour is estimated (global bright percentile, or a
   local brightness envelope with ``--bg-window``); every pixel's optical
   density ``OD = log(glass / pixel)`` per channel gives a *cell map*
   (largest channel OD: stained cytoplasm of any colour) and, by colour
   deconvolution (Ruifrok & Johnston, 2001), a *hematoxylin map* (nuclei).
2. Blobs. Each map is thresholded at several levels, morphologically closed
   at several sizes (joins a fragmented cell) and eroded at several radii
   (splits touching cells); ``cv2.connectedComponentsWithStats`` gives one
   box per blob (a hierarchy of cells, clusters and cell parts). A *texture
   map* (local grey standard deviation over the glass's noise level) adds
   the blobs of faint but textured cells.
3. Scores. A box scores high when the cell mass it holds is dense and not
   continued around it (``density * containment**2``, integral images); a
   pixel's mass is the share of the cell-map levels it exceeds (or its
   texture level), so a dark nucleus in a pale cytoplasm sheet still stands
   out.
4. Tiers, de-duplication, cap. Tier 1 are the blob boxes; tier 2 fills the
   room left up to ``--max-per-img``: nucleus boxes grown about their centre
   (a cell is several times larger than its nucleus) and a jittered
   multi-scale set around the best tier-1 and grown boxes; tier 3
   (``--windows``) a coarse multi-scale sliding-window set. Score =
   objectness in [0, 1] + (3 - tier), so a blob box outranks every box
   derived from it. Near-duplicates are removed on a relative box grid, then
   by NMS (``--nms-iou``); the best ``--max-per-img`` are kept, sorted by
   score (``LoadProposals(num_max_proposals=N)`` keeps the first N).

Output: a pickle that ``proposal_file`` of mmdet's ``BaseDetDataset`` (and
:class:`cervdet.datasets.WeakCocoDataset`) reads::

    {'<image folder name>/<file name>':            # see proposal_key()
         {'bboxes': float32 [N, 4] (x1, y1, x2, y2, original pixels),
          'scores': float32 [N] (descending; objectness + 3 - tier)},
     ...}                                          # one entry per image

Per split the tool prints the recall of the ground-truth boxes at IoU 0.5 and
0.7, the mean number of proposals per image and the seconds per image.

Examples::

    # every split of a data root (annotations/<split>.json, images/<split>/)
    # -> <data-root>/proposals/<split>.pkl
    python tools/dataset_converters/generate_proposals.py \\
        --data-root data/cervical-mosaic-bethesda-512

    # one COCO file
    python tools/dataset_converters/generate_proposals.py \\
        --ann-file ../shared/data/ccagt_sample/CCAgT_COCO_OD.json \\
        --img-dir ../shared/data/ccagt_sample/images --file-suffix .jpg \\
        --out /tmp/ccagt_proposals.pkl
"""
import argparse
import json
import os.path as osp
import pickle
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
# One IoU and one proposal-file key for the tool, the dataset and CorLoc.
from cervdet.datasets.weak_coco import proposal_key  # noqa: E402
from cervdet.evaluation.metrics.corloc_metric import box_iou  # noqa: E402

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')

#: Stain vectors (rows: hematoxylin, eosin, DAB) in RGB optical density,
#: Ruifrok & Johnston (2001), as in ``skimage.color.hed_from_rgb``.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29],
                         [0.07, 0.99, 0.11],
                         [0.27, 0.57, 0.78]], dtype=np.float32)


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


# ----------------------------------------------------------------------------
# Stain maps and blobs
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# Scores and de-duplication
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# Recall
# ----------------------------------------------------------------------------
def best_overlaps(proposals: Sequence[np.ndarray],
                  gt_boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Best IoU of every ground-truth box with any proposal of its image.

    Args:
        proposals (Sequence[np.ndarray]): Per image ``[N_i, 4]`` xyxy.
        gt_boxes (Sequence[np.ndarray]): Per image ``[M_i, 4]`` xyxy.

    Returns:
        np.ndarray: float64 ``[sum M_i]`` (0 for boxes of an image without
        proposals).
    """
    if len(proposals) != len(gt_boxes):
        raise ValueError(f'{len(proposals)} proposal sets for '
                         f'{len(gt_boxes)} images of ground truth')
    best = []
    for props, gts in zip(proposals, gt_boxes):
        gts = np.asarray(gts, np.float64).reshape(-1, 4)
        if len(gts) == 0:
            continue
        ious = box_iou(gts, props)
        best.append(ious.max(axis=1) if ious.shape[1] else
                    np.zeros(len(gts)))
    return np.concatenate(best) if best else np.zeros(0)


def proposal_recall(proposals: Sequence[np.ndarray],
                    gt_boxes: Sequence[np.ndarray],
                    iou_thrs: Sequence[float] = (0.5, 0.7)) -> np.ndarray:
    """Share of ground-truth boxes covered by a proposal at each IoU.

    A ground-truth box is recalled at ``t`` when some proposal of its image
    has IoU >= ``t`` with it.

    Args:
        proposals (Sequence[np.ndarray]): Per image ``[N_i, 4]`` xyxy.
        gt_boxes (Sequence[np.ndarray]): Per image ``[M_i, 4]`` xyxy.
        iou_thrs (Sequence[float]): IoU thresholds.

    Returns:
        np.ndarray: float64 ``[len(iou_thrs)]`` recalls in [0, 1]; ``nan``
        when there is no ground-truth box at all.
    """
    best = best_overlaps(proposals, gt_boxes)
    thrs = np.asarray(iou_thrs, np.float64).reshape(-1)
    if best.size == 0:
        return np.full(len(thrs), np.nan)
    return (best[None] >= thrs[:, None]).mean(axis=1)


# ----------------------------------------------------------------------------
# COCO sets and files
# ----------------------------------------------------------------------------
def load_coco_images(ann_file: Path, img_dir: Path, file_suffix: str = ''
                     ) -> List[Tuple[str, np.ndarray]]:
    """Images of a COCO file with their ground-truth boxes.

    Args:
        ann_file (Path): COCO detection JSON.
        img_dir (Path): Folder ``file_name`` is relative to.
        file_suffix (str): Appended to file names that lack it.

    Returns:
        list[tuple[str, np.ndarray]]: ``(image path, float32 [M, 4] xyxy
        boxes of non-crowd annotations)`` in file order.
    """
    try:
        coco = json.loads(Path(ann_file).read_text())
        images = coco['images']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{ann_file}: not a readable COCO file ({e}); check '
                         'it with tools/dataset_converters/check_coco.py')
    boxes: Dict = {}
    for a in coco.get('annotations', []):
        if not a.get('iscrowd', 0):
            boxes.setdefault(a['image_id'], []).append(a['bbox'])
    out = []
    for img in images:
        name = img['file_name']
        if file_suffix and not name.endswith(file_suffix):
            name += file_suffix
        b = np.asarray(boxes.get(img['id'], []), np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        out.append((osp.join(str(img_dir), name), b))
    return out


def _proposals_of_file(args: Tuple[str, ProposalConfig]
                       ) -> Tuple[str, np.ndarray, np.ndarray, float]:
    path, cfg = args
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(
            f'{path}: missing or not an image; check --img-dir / '
            '--file-suffix (tools/dataset_converters/check_coco.py lists '
            'all such files)')
    t0 = time.perf_counter()
    bboxes, scores = generate_proposals(img, cfg)
    return path, bboxes, scores, time.perf_counter() - t0


def generate_for_coco(ann_file: Path, img_dir: Path, out: Optional[Path],
                      cfg: ProposalConfig = ProposalConfig(),
                      file_suffix: str = '', workers: int = 1,
                      progress: bool = True, desc: str = 'proposals'
                      ) -> Dict:
    """Proposals of every image of a COCO file, written as a pickle.

    Args:
        ann_file (Path): COCO detection JSON.
        img_dir (Path): Its image folder.
        out (Path | None): Output ``.pkl`` (``None``: not written).
        cfg (ProposalConfig): Generator settings.
        file_suffix (str): Appended to file names that lack it.
        workers (int): Processes (1: in this process).
        progress (bool): Show a progress bar.
        desc (str): Progress bar label.

    Returns:
        dict: ``proposals`` (the dict written), ``recall`` ({IoU: recall}),
        ``images``, ``gt_boxes``, ``mean_proposals``, ``sec_per_img``
        (generation only, image decoding excluded).

    Raises:
        ValueError: When two images share a key (same folder name and file
            name): mmdet could not tell their proposals apart.
    """
    items = load_coco_images(ann_file, img_dir, file_suffix)
    keys = [proposal_key(p) for p, _ in items]
    if len(set(keys)) != len(keys):
        dup = sorted(k for k, n in Counter(keys).items() if n > 1)[:3]
        raise ValueError(
            f'{ann_file}: images share the proposal key {dup} (folder name + '
            'file name, the key mmdet matches proposals by); rename them')
    jobs = [(p, cfg) for p, _ in items]
    bar = tqdm(total=len(jobs), unit='img', desc=desc, disable=not progress)
    results = []
    if workers > 1:
        with Pool(workers) as pool:
            for r in pool.imap(_proposals_of_file, jobs, chunksize=4):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(_proposals_of_file(job))
            bar.update()
    bar.close()
    proposals = {k: dict(bboxes=b, scores=s)
                 for k, (_, b, s, _) in zip(keys, results)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, 'wb') as f:
            pickle.dump(proposals, f, protocol=4)
    thrs = (0.5, 0.7)
    rec = proposal_recall([r[1] for r in results], [b for _, b in items],
                          thrs)
    n = max(1, len(results))
    return dict(proposals=proposals, recall=dict(zip(thrs, rec.tolist())),
                images=len(results),
                gt_boxes=int(sum(len(b) for _, b in items)),
                mean_proposals=sum(len(r[1]) for r in results) / n,
                sec_per_img=sum(r[3] for r in results) / n)


def format_stats(name: str, stats: Dict) -> str:
    """One line of recall statistics."""
    rec = stats['recall']
    return (f'{name}: {stats["images"]} images, {stats["gt_boxes"]} gt boxes, '
            f'{stats["mean_proposals"]:.0f} proposals/img, '
            f'recall@0.5 {rec[0.5]:.3f}, recall@0.7 {rec[0.7]:.3f}, '
            f'{stats["sec_per_img"]:.3f} s/img')


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    d = ProposalConfig()
    p = argparse.ArgumentParser(
        description='Cell-candidate proposals (colour + blob analysis) in '
                    "the format of mmdet's proposal_file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_argument_group('input / output (give --data-root, or '
                               '--ann-file with --img-dir and --out)')
    src.add_argument('--data-root', type=Path,
                     help='folder with annotations/<split>.json and '
                          'images/<split>/')
    src.add_argument('--splits', nargs='+', default=None,
                     help=f'splits of --data-root (default: those of '
                          f'{SPLITS} that exist)')
    src.add_argument('--out-dir', type=Path,
                     help='where <split>.pkl go (default: '
                          '<data-root>/proposals)')
    src.add_argument('--ann-file', type=Path, help='one COCO JSON')
    src.add_argument('--img-dir', type=Path, help='its image folder')
    src.add_argument('--out', type=Path, help='output .pkl of --ann-file')
    src.add_argument('--file-suffix', default='',
                     help="append to file_name when missing (e.g. '.jpg')")
    g = p.add_argument_group('generator')
    g.add_argument('--max-per-img', type=int, default=d.max_per_img)
    g.add_argument('--min-size', type=int, default=d.min_size,
                   help='smallest proposal side (px)')
    g.add_argument('--nms-iou', type=float, default=d.nms_iou,
                   help='de-duplication IoU')
    g.add_argument('--windows', action='store_true',
                   help='add a coarse multi-scale sliding-window set (fills '
                        'up to --max-per-img)')
    g.add_argument('--bg-window', type=int, default=d.bg_window,
                   help='local glass estimate over windows of this size (px, '
                        '> largest cell; 0: one colour per image)')
    p.add_argument('--workers', type=int, default=1, help='processes')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace proposal files that exist already')
    args = p.parse_args(argv)
    if (args.data_root is None) == (args.ann_file is None):
        p.error('give either --data-root or --ann-file')
    if args.ann_file is not None and (args.img_dir is None or
                                      args.out is None):
        p.error('--ann-file needs --img-dir and --out')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    cfg = ProposalConfig(max_per_img=args.max_per_img, min_size=args.min_size,
                         nms_iou=args.nms_iou, windows=args.windows,
                         bg_window=args.bg_window)
    if args.ann_file is not None:
        jobs = [('proposals', args.ann_file, args.img_dir, args.out)]
    else:
        root = args.data_root
        out_dir = args.out_dir or root / 'proposals'
        splits = args.splits or [
            s for s in SPLITS if (root / 'annotations' / f'{s}.json').is_file()]
        if not splits:
            print(f'error: no annotations/<split>.json in {root}',
                  file=sys.stderr)
            return 2
        jobs = [(s, root / 'annotations' / f'{s}.json', root / 'images' / s,
                 out_dir / f'{s}.pkl') for s in splits]
    existing = [str(out) for *_, out in jobs if Path(out).exists()]
    if existing and not args.force_overwrite:
        print(f'error: {", ".join(existing)} exist(s): choose another '
              '--out-dir / --out, or pass --force-overwrite to replace',
              file=sys.stderr)
        return 2
    lines = []
    for name, ann, img_dir, out in jobs:
        if not Path(ann).is_file():
            print(f'error: {ann} not found', file=sys.stderr)
            return 2
        try:
            stats = generate_for_coco(ann, img_dir, out, cfg,
                                      args.file_suffix, args.workers,
                                      desc=name)
        except (FileNotFoundError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        lines.append(format_stats(name, stats) + f' -> {out}')
        print(lines[-1])
    if len(lines) > 1:
        print('summary (settings: ' + json.dumps(asdict(cfg)) + '):')
        print('\n'.join('  ' + line for line in lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
