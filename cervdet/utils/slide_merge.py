"""Merge the detections of overlapping tiles of a whole slide.

A slide is read in tiles of ``tile_size`` px that overlap by ``overlap`` px
(stride ``tile_size - overlap``). A cell near a tile border is seen by up to
four tiles: whole in some, cut by the tile edge in others. Two steps give
each cell exactly once:

1. :func:`drop_edge_boxes` (per tile, tile coordinates): drop every box
   touching an *interior* tile edge (an edge with a neighbouring tile) within
   ``margin`` px. Cut copies of a cell always touch the edge that cuts them,
   so all of them go.
2. :func:`merge_detections` (per slide, level-0 coordinates): greedy
   suppression of the copies of a cell seen whole by two or more tiles
   (identical boxes, IoU = 1): class-aware NMS, IOS (intersection over the
   smaller box, also removes partial boxes a detector draws inside a whole
   one) or centre distance in micrometres.

**Guarantee.** If ``overlap >= L + 2 * margin`` with ``L`` the largest cell
side (level-0 px at the tile resolution), every cell lies whole and at least
``margin`` px away from the interior edges of at least one tile (pick along
each axis the last tile starting ``margin`` px or more before the cell: it
ends at least ``overlap - margin > L + margin`` px after that start), so step
1 keeps at least one whole copy and drops every cut one; step 2 leaves one of
the whole copies (they coincide). Hence each cell appears once, with its
full box. ``tests/test_utils/test_slide_merge.py`` checks this on cells
placed exactly on tile borders and corners.

**Scaling.** :func:`merge_detections` never builds an ``N x N`` matrix: the
slide is cut into spatial blocks of ``block_size`` px (a Python loop over
blocks, never over boxes). A block processes the boxes whose centre lies in
the block plus a margin ring and keeps the survivors whose centre lies in the
block's core. Inside a block, the greedy suppression is vectorised: the
suppressing pairs come from chunked pairwise matrices, then a parallel
fixpoint decides every box (kept: all higher-scoring neighbours are
suppressed; suppressed: a higher-scoring neighbour is kept). Boxes near the
outer edge of the block window may have unseen neighbours: they are never
*kept* from inside the window (only suppressed), and when a core box stays
undecided the margin is doubled and the block redone. The blocked result is
therefore **exactly** the global greedy result (not an approximation that
only holds when suppression chains are short); blocks with more than
``max_block_boxes`` boxes are split further.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Dets = Dict[str, np.ndarray]

#: Merge methods of :func:`merge_detections`.
MERGE_METHODS = ('nms', 'ios', 'centre')

_UNDECIDED, _KEPT, _SUPPRESSED = 0, 1, 2


def check_dets(dets: Dets, num_classes: Optional[int] = None,
               name: str = 'dets') -> Tuple[np.ndarray, np.ndarray,
                                            np.ndarray]:
    """Validate a detections dict and return its main arrays.

    Args:
        dets (dict): ``bboxes`` float ``[N, 4]`` (x1, y1, x2, y2), ``scores``
            float ``[N]``, ``labels`` int ``[N]`` (optional ``feats`` ``[N,
            C]``).
        num_classes (int, optional): When given, labels must lie in
            ``[0, num_classes)``.
        name (str): Name used in error messages.

    Returns:
        tuple: ``bboxes`` float64 ``[N, 4]``, ``scores`` float64 ``[N]``,
        ``labels`` int64 ``[N]``.

    Raises:
        ValueError: Naming the field and its expected shape.
    """
    if not isinstance(dets, dict):
        raise ValueError(f'{name} must be a dict with bboxes [N, 4], scores '
                         f'[N] and labels [N]; got {type(dets).__name__}')
    missing = [k for k in ('bboxes', 'scores', 'labels') if k not in dets]
    if missing:
        raise ValueError(f'{name} misses the keys {missing}: a detections '
                         'dict needs bboxes [N, 4], scores [N], labels [N]')
    bboxes = np.asarray(dets['bboxes'], dtype=np.float64)
    if bboxes.size == 0:
        bboxes = bboxes.reshape(0, 4)
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise ValueError(f'{name}["bboxes"] must be [N, 4] (x1, y1, x2, y2); '
                         f'got shape {bboxes.shape}')
    n = bboxes.shape[0]
    scores = np.asarray(dets['scores'], dtype=np.float64).reshape(-1)
    labels = np.asarray(dets['labels']).reshape(-1)
    for key, arr in (('scores', scores), ('labels', labels)):
        if arr.shape[0] != n:
            raise ValueError(f'{name}["{key}"] has {arr.shape[0]} entries '
                             f'but {name}["bboxes"] has {n}: give one per box')
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(f'{name}["labels"] must be integer class '
                             'indices')
    labels = labels.astype(np.int64)
    if 'feats' in dets and dets['feats'] is not None and \
            np.asarray(dets['feats']).shape[:1] != (n, ):
        raise ValueError(f'{name}["feats"] must be [N, C] with N = {n}; got '
                         f'shape {np.asarray(dets["feats"]).shape}')
    if not np.all(np.isfinite(bboxes)) or not np.all(np.isfinite(scores)):
        raise ValueError(f'{name} has NaN/inf boxes or scores')
    if n and np.any(bboxes[:, 2:] < bboxes[:, :2]):
        bad = int(np.flatnonzero(np.any(bboxes[:, 2:] < bboxes[:, :2],
                                        axis=1))[0])
        raise ValueError(f'{name}["bboxes"][{bad}] = {bboxes[bad].tolist()} '
                         'has x2 < x1 or y2 < y1: boxes must be x1, y1, x2, '
                         'y2')
    if num_classes is not None and labels.size and (
            labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'{name}["labels"] must lie in [0, {num_classes}) '
                         f'(the classes list); got range [{labels.min()}, '
                         f'{labels.max()}]')
    return bboxes, scores, labels


def index_dets(dets: Dets, index: np.ndarray) -> Dets:
    """Select rows of every per-box array of ``dets`` (``bboxes``,
    ``scores``, ``labels``, ``feats``, ...); other entries are copied."""
    n = np.asarray(dets['bboxes']).reshape(-1, 4).shape[0]
    out = {}
    for k, v in dets.items():
        arr = None if v is None else np.asarray(v)
        if arr is not None and arr.ndim >= 1 and arr.shape[0] == n:
            out[k] = arr[index]
        else:
            out[k] = v
    return out


def concat_dets(parts: Sequence[Dets]) -> Dets:
    """Concatenate detections dicts (e.g. of all tiles of a slide).

    Returns:
        dict: ``bboxes float32[N, 4]``, ``scores float32[N]``, ``labels
        int64[N]``, and any other per-box array every part has (e.g.
        ``feats float32[N, C]``, the tile index of each box).
    """
    parts = list(parts)
    out = {
        'bboxes': np.concatenate(
            [np.asarray(p['bboxes'], np.float32).reshape(-1, 4)
             for p in parts]) if parts else np.zeros((0, 4), np.float32),
        'scores': np.concatenate(
            [np.asarray(p['scores'], np.float32).reshape(-1)
             for p in parts]) if parts else np.zeros(0, np.float32),
        'labels': np.concatenate(
            [np.asarray(p['labels'], np.int64).reshape(-1)
             for p in parts]) if parts else np.zeros(0, np.int64),
    }
    extra = set.intersection(*(set(p) for p in parts)) - set(out) \
        if parts else set()
    for k in sorted(extra):
        if all(p[k] is not None for p in parts):
            out[k] = np.concatenate(
                [np.asarray(p[k], np.float32 if k == 'feats' else None)
                 for p in parts])
    return out


def drop_edge_boxes(bboxes: np.ndarray,
                    tile_size: Union[int, Tuple[int, int]],
                    edges: Sequence[bool],
                    margin: float = 2.) -> np.ndarray:
    """Which boxes of one tile do not touch an interior tile edge.

    A box within ``margin`` px of an interior edge may be a cell cut by the
    tile; a neighbouring tile overlapping this one holds the whole cell when
    ``overlap >= largest cell + 2 * margin`` (see the module docstring).

    Args:
        bboxes (np.ndarray): float ``[N, 4]`` x1, y1, x2, y2 in **tile**
            pixels (origin at the tile's top-left corner).
        tile_size (int | tuple[int, int]): Tile side, or ``(width,
            height)``.
        edges (Sequence[bool]): ``[left, top, right, bottom]``: True where
            the edge is interior (a neighbouring tile lies beyond it); edges
            on the slide border are False (cells cut by the slide stay).
        margin (float): Distance (px) to an interior edge under which a box
            counts as touching it.

    Returns:
        np.ndarray: bool ``[N]``, True for boxes to keep.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64)
    if bboxes.size == 0:
        return np.zeros(0, dtype=bool)
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise ValueError(f'bboxes must be [N, 4] tile-pixel x1, y1, x2, y2; '
                         f'got shape {bboxes.shape}')
    edges = np.asarray(edges, dtype=bool).reshape(-1)
    if edges.shape != (4, ):
        raise ValueError('edges must be 4 booleans (left, top, right, '
                         f'bottom are interior); got {edges.tolist()}')
    tw, th = (tile_size, tile_size) if np.isscalar(tile_size) else tile_size
    lo = np.array([margin, margin])  # left/top limits
    hi = np.array([tw - margin, th - margin])  # right/bottom limits
    touch = np.concatenate([bboxes[:, :2] <= lo, bboxes[:, 2:] >= hi],
                           axis=1)  # [N, 4] left, top, right, bottom
    return ~np.any(touch & edges[None], axis=1)


def _pair_criterion(method: str, bi: np.ndarray, bj: np.ndarray,
                    thr: float) -> np.ndarray:
    """Whether row box ``i`` is suppressed by column box ``j`` (if kept).

    Args:
        bi (np.ndarray): ``[R, 4]``; bj (np.ndarray): ``[C, 4]``.

    Returns:
        np.ndarray: bool ``[R, C]``.
    """
    if method == 'centre':
        ci = (bi[:, :2] + bi[:, 2:]) / 2
        cj = (bj[:, :2] + bj[:, 2:]) / 2
        d2 = ((ci[:, None, :] - cj[None, :, :])**2).sum(-1)
        return d2 < thr * thr  # thr = centre distance in px
    iw = np.minimum(bi[:, None, 2], bj[None, :, 2]) - \
        np.maximum(bi[:, None, 0], bj[None, :, 0])
    ih = np.minimum(bi[:, None, 3], bj[None, :, 3]) - \
        np.maximum(bi[:, None, 1], bj[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    ai = (bi[:, 2] - bi[:, 0]) * (bi[:, 3] - bi[:, 1])
    aj = (bj[:, 2] - bj[:, 0]) * (bj[:, 3] - bj[:, 1])
    if method == 'nms':  # like mmcv's nms: suppressed when IoU > thr
        union = ai[:, None] + aj[None, :] - inter
        return inter > thr * np.maximum(union, 1e-12)
    # ios: intersection over the smaller box >= thr
    small = np.minimum(ai[:, None], aj[None, :])
    return (inter > 0) & (inter >= thr * np.maximum(small, 1e-12))


def _suppression_pairs(method: str, boxes: np.ndarray, labels: np.ndarray,
                       thr: float, class_aware: bool,
                       chunk_elems: int = 2**21
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)``, ``j < i`` (boxes sorted by decreasing score),
    where a kept ``j`` suppresses ``i``; chunked so no ``N x N`` matrix."""
    n = boxes.shape[0]
    rows = max(1, chunk_elems // max(n, 1))
    ii, jj = [], []
    for start in range(0, n, rows):  # loop over row chunks, not boxes
        stop = min(n, start + rows)
        crit = _pair_criterion(method, boxes[start:stop], boxes[:stop], thr)
        crit &= np.arange(stop)[None, :] < np.arange(start, stop)[:, None]
        if class_aware:
            crit &= labels[start:stop, None] == labels[None, :stop]
        i, j = np.nonzero(crit)
        ii.append(i + start)
        jj.append(j)
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ii).astype(np.int64), \
        np.concatenate(jj).astype(np.int64)


def _resolve_greedy(n: int, ii: np.ndarray, jj: np.ndarray,
                    open_mask: np.ndarray) -> np.ndarray:
    """Vectorised greedy suppression as a fixpoint over suppression pairs.

    Box ``i`` (sorted by decreasing score) is kept iff no kept ``j < i``
    suppresses it. Each round, in parallel: a box with a kept suppressor is
    suppressed; a box whose suppressors are all suppressed is kept, unless
    it is *open* (it may have suppressors outside the window). The result
    equals the sequential greedy on every decided box.

    Returns:
        np.ndarray: int8 ``[n]`` states (0 undecided, 1 kept, 2 suppressed).
    """
    state = np.zeros(n, dtype=np.int8)
    while True:
        undecided = state == _UNDECIDED
        if not undecided.any():
            break
        sj = state[jj]
        has_kept = np.bincount(ii[sj == _KEPT], minlength=n) > 0
        alive = np.bincount(ii[sj != _SUPPRESSED], minlength=n)
        new_sup = undecided & has_kept
        new_keep = undecided & (alive == 0) & ~open_mask
        if not (new_sup.any() or new_keep.any()):
            break
        state[new_sup] = _SUPPRESSED
        state[new_keep] = _KEPT
    return state


def merge_detections(dets: Dets,
                     method: str = 'nms',
                     class_aware: bool = True,
                     iou_thr: float = 0.5,
                     ios_thr: float = 0.6,
                     centre_dist_um: float = 6.0,
                     mpp: Optional[float] = None,
                     block_size: float = 8192,
                     max_box_size: Optional[float] = None,
                     max_block_boxes: int = 256) -> np.ndarray:
    """Greedy de-duplication of the detections of a whole slide.

    Boxes are visited by decreasing score (ties: lower index first); a box is
    suppressed when a kept earlier box (of the same class when
    ``class_aware``) matches it:

    * ``'nms'``: IoU > ``iou_thr`` (``mmcv.ops.batched_nms`` when ``N <=
      max_block_boxes``; the same criterion block-wise otherwise, in float64,
      so results can differ from mmcv's float32 only for an IoU within
      rounding of ``iou_thr`` or for tied scores);
    * ``'ios'``: intersection over the *smaller* box >= ``ios_thr`` (a partial
      box of a split cell inside the whole box is removed even when its IoU is
      small);
    * ``'centre'``: centre distance < ``centre_dist_um / mpp`` px.

    Works block-wise (module docstring) and equals the global greedy result.

    Args:
        dets (dict): ``bboxes [N, 4]`` level-0 x1, y1, x2, y2, ``scores
            [N]``, ``labels [N]``.
        method (str): ``'nms'``, ``'ios'`` or ``'centre'``.
        class_aware (bool): Only boxes of the same class suppress each other.
        iou_thr (float): IoU threshold of ``'nms'``.
        ios_thr (float): Intersection-over-smaller threshold of ``'ios'``.
        centre_dist_um (float): Centre distance of ``'centre'`` in um.
        mpp (float, optional): Level-0 microns per pixel (needed by
            ``'centre'``).
        block_size (float): Side of a spatial block (level-0 px).
        max_box_size (float, optional): Largest box side (px); computed when
            None. A smaller value than the real largest box is an error.
        max_block_boxes (int): Blocks with more boxes are split further.

    Returns:
        np.ndarray: int64 ``[M]`` indices into ``dets`` of the kept boxes, by
        decreasing score.
    """
    if method not in MERGE_METHODS:
        raise ValueError(f'unknown merge method {method!r}; choose one of '
                         f'{MERGE_METHODS}')
    bboxes, scores, labels = check_dets(dets)
    n = bboxes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if block_size <= 0 or max_block_boxes < 1:
        raise ValueError('block_size and max_block_boxes must be positive; '
                         f'got {block_size} and {max_block_boxes}')
    sizes = bboxes[:, 2:] - bboxes[:, :2]
    largest = float(sizes.max())
    if max_box_size is not None and max_box_size < largest:
        raise ValueError(f'max_box_size={max_box_size} but the largest box '
                         f'side is {largest:.1f} px: give a larger value or '
                         'None (computed)')
    if method == 'centre':
        if mpp is None or not mpp > 0:
            raise ValueError("merge method 'centre' needs the slide's "
                             f'microns per pixel (mpp, got {mpp}): pass mpp= '
                             "(the reader's .mpp or --mpp) or use method "
                             "'nms'/'ios'")
        thr = centre_dist_um / float(mpp)
        reach = thr  # neighbours have centres closer than reach
    else:
        thr = iou_thr if method == 'nms' else ios_thr
        reach = max(largest, float(max_box_size or 0))
    order = np.lexsort((np.arange(n), -scores))  # by score, ties by index
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    centres = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    lo, hi = centres.min(0), centres.max(0)

    if method == 'nms' and n <= max_block_boxes:
        import torch
        from mmcv.ops import batched_nms
        _, keep = batched_nms(
            torch.from_numpy(bboxes.astype(np.float32)),
            torch.from_numpy(scores.astype(np.float32)),
            torch.from_numpy(labels), dict(type='nms', iou_threshold=iou_thr),
            class_agnostic=not class_aware)
        keep = keep.numpy().astype(np.int64)
        return keep[np.lexsort((keep, -scores[keep]))]

    by_y = np.argsort(centres[:, 1], kind='stable')
    ys = centres[by_y, 1]

    def in_box(x0, y0, x1, y1):
        a, b = np.searchsorted(ys, [y0, y1], side='left')
        idx = by_y[a:b]
        cx = centres[idx, 0]
        return idx[(cx >= x0) & (cx < x1)]

    ends = np.nextafter(hi, np.inf)
    nx, ny = (np.maximum(np.ceil((ends - lo) / block_size), 1)).astype(int)
    xs_edges = np.minimum(lo[0] + block_size * np.arange(nx + 1), ends[0])
    ys_edges = np.minimum(lo[1] + block_size * np.arange(ny + 1), ends[1])
    xs_edges[-1], ys_edges[-1] = ends
    stack = [(xs_edges[i], ys_edges[j], xs_edges[i + 1], ys_edges[j + 1])
             for j in range(ny) for i in range(nx)]
    min_side = max(2 * reach, 1.)
    kept: List[np.ndarray] = []
    while stack:  # loop over spatial blocks
        x0, y0, x1, y1 = stack.pop()
        core = in_box(x0, y0, x1, y1)
        if core.size == 0:
            continue
        margin = max(reach, 1e-6)
        window = in_box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
        if window.size > max_block_boxes and max(x1 - x0, y1 - y0) > \
                min_side:
            if x1 - x0 >= y1 - y0:  # split the longer side in two
                xm = (x0 + x1) / 2
                stack += [(x0, y0, xm, y1), (xm, y0, x1, y1)]
            else:
                ym = (y0 + y1) / 2
                stack += [(x0, y0, x1, ym), (x0, ym, x1, y1)]
            continue
        while True:
            wx0, wy0 = x0 - margin, y0 - margin
            wx1, wy1 = x1 + margin, y1 + margin
            window = in_box(wx0, wy0, wx1, wy1)
            window = window[np.argsort(rank[window])]
            c = centres[window]
            open_mask = (((c[:, 0] - wx0 < reach) & (wx0 > lo[0]))
                         | ((wx1 - c[:, 0] < reach) & (wx1 <= hi[0]))
                         | ((c[:, 1] - wy0 < reach) & (wy0 > lo[1]))
                         | ((wy1 - c[:, 1] < reach) & (wy1 <= hi[1])))
            ii, jj = _suppression_pairs(method, bboxes[window],
                                        labels[window], thr, class_aware)
            state = _resolve_greedy(window.size, ii, jj, open_mask)
            in_core = (c[:, 0] >= x0) & (c[:, 0] < x1) & \
                (c[:, 1] >= y0) & (c[:, 1] < y1)
            if not np.any(in_core & (state == _UNDECIDED)):
                kept.append(window[in_core & (state == _KEPT)])
                break
            margin *= 2  # a suppression chain leaves the window: widen it
    keep = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return keep[np.argsort(rank[keep])].astype(np.int64)


__all__ = ['MERGE_METHODS', 'check_dets', 'index_dets', 'concat_dets',
           'drop_edge_boxes', 'merge_detections']
