"""Tests of cervdet.utils.slide_merge: edge dropping and blocked merging."""
import time

import numpy as np
import pytest
import torch
from mmcv.ops import batched_nms

from cervdet.utils.slide_merge import (
    _pair_criterion,
    concat_dets,
    drop_edge_boxes,
    index_dets,
    merge_detections,
)


def _dets(boxes, scores, labels=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.zeros(len(boxes), np.int64) if labels is None else labels
    return dict(bboxes=boxes, scores=np.asarray(scores, np.float32),
                labels=np.asarray(labels, np.int64))


def _naive_greedy(dets, method, thr, class_aware=True):
    """Reference: the textbook sequential greedy (a Python loop)."""
    b = np.asarray(dets['bboxes'], np.float64)
    s = np.asarray(dets['scores'], np.float64)
    lab = np.asarray(dets['labels'])
    order = np.lexsort((np.arange(len(s)), -s))
    suppressed = np.zeros(len(s), bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        hit = _pair_criterion(method, b[rest], b[i:i + 1], thr)[:, 0]
        if class_aware:
            hit &= lab[rest] == lab[i]
        suppressed[rest[hit]] = True
    return np.asarray(keep, np.int64)


def _random_dets(n, extent, rng, smin=6., smax=60., num_classes=3):
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(smin, smax, (n, 2))
    return _dets(np.concatenate([xy, xy + wh], 1), rng.random(n),
                 rng.integers(0, num_classes, n))


# --------------------------------------------------------- drop_edge_boxes
def test_drop_edge_boxes_hand_made():
    boxes = np.array([
        [0, 50, 20, 70],  # touches left
        [50, 1, 70, 20],  # within margin 2 of top
        [50, 50, 70, 70],  # interior
        [80, 50, 100, 70],  # touches right (tile 100)
        [50, 80, 70, 98.5],  # within 2 of bottom
        [3, 3, 97, 97],  # 3 px from every edge: kept
    ], np.float32)
    keep = drop_edge_boxes(boxes, 100, [True, True, True, True], margin=2.)
    assert keep.tolist() == [False, False, True, False, False, True]
    # slide-border edges keep the boxes touching them
    keep = drop_edge_boxes(boxes, 100, [False, True, True, False])
    assert keep.tolist() == [True, False, True, False, True, True]
    # non-square tile (w, h): the right edge is at 120
    keep = drop_edge_boxes(boxes, (120, 100), [False, False, True, False])
    assert keep.all()
    assert drop_edge_boxes(np.zeros((0, 4)), 100, [True] * 4).shape == (0, )
    with pytest.raises(ValueError, match='4 booleans'):
        drop_edge_boxes(boxes, 100, [True, True])
    with pytest.raises(ValueError, match=r'\[N, 4\]'):
        drop_edge_boxes(np.zeros((3, 3)), 100, [True] * 4)


# ---------------------------------------------------------- hand-made merge
def test_nms_class_aware_vs_agnostic():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]]
    d = _dets(boxes, [0.9, 0.8, 0.7], [0, 1, 1])
    # IoU(0, 1) = 90 / 110 = 0.82 > 0.5 but the classes differ
    assert merge_detections(d, 'nms').tolist() == [0, 1, 2]
    assert merge_detections(d, 'nms', class_aware=False).tolist() == [0, 2]
    d['labels'][:] = 1
    assert merge_detections(d, 'nms').tolist() == [0, 2]
    # iou exactly below the threshold keeps both (mmcv: suppressed if > thr)
    assert merge_detections(d, 'nms', iou_thr=0.83).tolist() == [0, 1, 2]


def test_ios_removes_partial_box_nms_does_not():
    whole = [100, 100, 140, 140]  # a cell
    partial = [100, 100, 115, 140]  # the part a neighbouring tile saw
    d = _dets([whole, partial], [0.9, 0.95])
    # IoU = 600 / 1600 = 0.375 < 0.5: NMS keeps both
    assert sorted(merge_detections(d, 'nms').tolist()) == [0, 1]
    # IOS = 600 / 600 = 1: the higher-scoring box wins, the other goes
    assert merge_detections(d, 'ios', ios_thr=0.6).tolist() == [1]
    d['scores'] = np.array([0.95, 0.9], np.float32)
    assert merge_detections(d, 'ios').tolist() == [0]
    # a box touching but not overlapping is never suppressed
    d = _dets([whole, [140, 100, 180, 140]], [0.9, 0.8])
    assert merge_detections(d, 'ios', ios_thr=0.).tolist() == [0, 1]


def test_centre_distance_uses_mpp():
    # centres 10 px apart
    d = _dets([[0, 0, 20, 20], [10, 0, 30, 20], [100, 0, 120, 20]],
              [0.9, 0.8, 0.7])
    # 0.5 um/px: 10 px = 5 um < 6 um -> suppressed
    assert merge_detections(d, 'centre', centre_dist_um=6., mpp=0.5).tolist() \
        == [0, 2]
    # 0.25 um/px: 10 px = 2.5 um > 2 um -> kept
    assert merge_detections(d, 'centre', centre_dist_um=2.,
                            mpp=0.25).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match='mpp'):
        merge_detections(d, 'centre')


def test_merge_errors_and_empty():
    assert merge_detections(_dets(np.zeros((0, 4)), [])).shape == (0, )
    d = _dets([[0, 0, 10, 10]], [0.5])
    with pytest.raises(ValueError, match='unknown merge method'):
        merge_detections(d, 'wbf')
    with pytest.raises(ValueError, match='max_box_size'):
        merge_detections(d, max_box_size=5)
    with pytest.raises(ValueError, match='scores'):
        merge_detections(dict(bboxes=np.zeros((2, 4)), scores=np.zeros(3),
                              labels=np.zeros(2)))
    with pytest.raises(ValueError, match='x2 < x1'):
        merge_detections(_dets([[10, 0, 0, 10]], [0.5]))
    with pytest.raises(ValueError, match='misses the keys'):
        merge_detections(dict(bboxes=np.zeros((1, 4))))


def test_index_and_concat_dets():
    a = _dets([[0, 0, 1, 1], [2, 2, 3, 3]], [0.1, 0.2], [0, 1])
    a['feats'] = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = _dets([[5, 5, 6, 6]], [0.3], [2])
    b['feats'] = np.ones((1, 3), np.float32)
    c = concat_dets([a, b])
    assert c['bboxes'].shape == (3, 4) and c['labels'].tolist() == [0, 1, 2]
    assert c['feats'].shape == (3, 3)
    sel = index_dets(c, np.array([2, 0]))
    assert sel['scores'].tolist() == pytest.approx([0.3, 0.1])
    assert sel['feats'][0].tolist() == [1, 1, 1]
    assert concat_dets([])['bboxes'].shape == (0, 4)


# ------------------------------------------ cells exactly on tile borders
def _tile_origins(size, tile, stride):
    n = int(np.ceil(max(size - tile, 0) / stride)) + 1
    return sorted({min(k * stride, size - tile) for k in range(n)})


def _place_cells(rng, width, height, edges_x, edges_y, lmax):
    """Non-overlapping cells: some exactly on tile borders and corners."""
    cells = []

    def add(x1, y1, w, h):
        box = np.array([x1, y1, x1 + w, y1 + h], np.float64)
        if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
            return
        for other in cells:  # keep 4 px between cells
            if (min(box[2], other[2]) - max(box[0], other[0]) > -4
                    and min(box[3], other[3]) - max(box[1], other[1]) > -4):
                return
        cells.append(box)

    for ex in edges_x:  # centred on every tile corner
        for ey in edges_y:
            w, h = rng.integers(10, lmax + 1, 2)
            add(ex - w / 2, ey - h / 2, w, h)
    for e in edges_x:  # starting / ending exactly on a vertical tile edge
        for _ in range(12):
            w, h = rng.integers(10, lmax + 1, 2)
            y = rng.integers(0, height - h + 1)
            add(e, y, w, h) if rng.random() < .5 else add(e - w, y, w, h)
    for e in edges_y:  # ... on a horizontal tile edge
        for _ in range(12):
            w, h = rng.integers(10, lmax + 1, 2)
            x = rng.integers(0, width - w + 1)
            add(x, e, w, h) if rng.random() < .5 else add(x, e - h, w, h)
    for _ in range(400):  # random positions
        w, h = rng.integers(10, lmax + 1, 2)
        add(rng.integers(0, width - w + 1), rng.integers(0, height - h + 1),
            w, h)
    return np.asarray(cells)


def _tiled_detector(cells, labels, scores, width, height, tile, overlap,
                    margin, drop=True):
    """Per-tile detections of a perfect detector (cells clipped to tiles)."""
    stride = tile - overlap
    parts = []
    for ty in _tile_origins(height, tile, stride):
        for tx in _tile_origins(width, tile, stride):
            clip = np.stack([np.maximum(cells[:, 0], tx),
                             np.maximum(cells[:, 1], ty),
                             np.minimum(cells[:, 2], tx + tile),
                             np.minimum(cells[:, 3], ty + tile)], 1)
            seen = (clip[:, 2] > clip[:, 0]) & (clip[:, 3] > clip[:, 1])
            local = clip[seen] - np.array([tx, ty, tx, ty])
            edges = [tx > 0, ty > 0, tx + tile < width, ty + tile < height]
            keep = drop_edge_boxes(local, tile, edges, margin) if drop else \
                np.ones(len(local), bool)
            parts.append(dict(
                bboxes=(local[keep] + np.array([tx, ty, tx, ty])).astype(
                    np.float32),
                scores=scores[seen][keep], labels=labels[seen][keep]))
    return concat_dets(parts)


@pytest.mark.parametrize('method', ['nms', 'ios', 'centre'])
def test_cells_on_tile_borders_found_once(method):
    rng = np.random.default_rng(1)
    width, height, tile, overlap, margin = 1000, 800, 256, 64, 2.
    lmax = int(overlap - 2 * margin)  # the guarantee's largest cell
    stride = tile - overlap
    ox = _tile_origins(width, tile, stride)
    oy = _tile_origins(height, tile, stride)
    edges_x = sorted({e for o in ox for e in (o, o + tile)} - {0, width})
    edges_y = sorted({e for o in oy for e in (o, o + tile)} - {0, height})
    cells = _place_cells(rng, width, height, edges_x, edges_y, lmax)
    on_x = np.isin(cells[:, [0, 2]], edges_x).any(1)
    on_y = np.isin(cells[:, [1, 3]], edges_y).any(1)
    centre = (cells[:, :2] + cells[:, 2:]) / 2
    on_corner = np.isin(centre[:, 0], edges_x) & np.isin(centre[:, 1], edges_y)
    assert on_x.sum() >= 15 and on_y.sum() >= 10 and on_corner.sum() >= 8
    assert len(cells) >= 100
    labels = rng.integers(0, 3, len(cells))
    scores = rng.uniform(0.3, 1, len(cells)).astype(np.float32)
    dets = _tiled_detector(cells, labels, scores, width, height, tile,
                           overlap, margin)
    assert len(dets['bboxes']) > len(cells)  # whole duplicates in overlaps
    keep = merge_detections(dets, method, mpp=0.5, centre_dist_um=2.,
                            block_size=300, max_block_boxes=64)
    got = dets['bboxes'][keep].astype(np.float64)
    assert len(got) == len(cells)
    order_got = np.lexsort(got.T[::-1])
    order_ref = np.lexsort(cells.T[::-1])
    np.testing.assert_array_equal(got[order_got], cells[order_ref])
    np.testing.assert_array_equal(dets['labels'][keep][order_got],
                                  labels[order_ref])
    # without dropping the edge boxes, cut cells survive as extra boxes
    raw = _tiled_detector(cells, labels, scores, width, height, tile, overlap,
                          margin, drop=False)
    if method == 'nms':
        assert len(merge_detections(raw, 'nms')) > len(cells)


# ------------------------------------------------ blocked == global greedy
def test_blocked_nms_equals_mmcv_global():
    rng = np.random.default_rng(0)
    d = _random_dets(5000, 2500, rng)
    keep = merge_detections(d, 'nms', iou_thr=0.3, block_size=400,
                            max_block_boxes=256)
    _, ref = batched_nms(torch.from_numpy(d['bboxes']),
                         torch.from_numpy(d['scores']),
                         torch.from_numpy(d['labels']),
                         dict(type='nms', iou_threshold=0.3))
    assert 500 < len(keep) < 5000  # plenty suppressed, plenty kept
    np.testing.assert_array_equal(keep, ref.numpy())  # same order too
    agn = merge_detections(d, 'nms', class_aware=False, iou_thr=0.3,
                           block_size=400, max_block_boxes=256)
    _, ref = batched_nms(torch.from_numpy(d['bboxes']),
                         torch.from_numpy(d['scores']),
                         torch.from_numpy(d['labels']),
                         dict(type='nms', iou_threshold=0.3),
                         class_agnostic=True)
    np.testing.assert_array_equal(agn, ref.numpy())
    assert len(agn) < len(keep)


@pytest.mark.parametrize('method,thr', [('ios', 0.5), ('centre', 25.)])
def test_blocked_equals_global_greedy(method, thr):
    rng = np.random.default_rng(2)
    d = _random_dets(5000, 2500, rng)
    keep = merge_detections(d, method, ios_thr=thr, centre_dist_um=thr,
                            mpp=1., block_size=400, max_block_boxes=256)
    ref = _naive_greedy(d, method, thr)
    assert 500 < len(ref) < 5000
    np.testing.assert_array_equal(keep, ref)
    whole = merge_detections(d, method, ios_thr=thr, centre_dist_um=thr,
                             mpp=1., block_size=1e9, max_block_boxes=10**9)
    np.testing.assert_array_equal(whole, ref)


@pytest.mark.parametrize('method', ['nms', 'ios', 'centre'])
def test_blocked_exact_on_long_suppression_chain(method):
    """A chain of boxes each suppressing the next crosses many blocks: the
    status of a box depends on boxes far outside a fixed margin ring."""
    n = 200
    x = np.arange(n) * 3.  # box i overlaps box i + 1 (IoU 7/13 > 0.5)
    boxes = np.stack([x, np.zeros(n), x + 10, np.full(n, 10.)], 1)
    for scores in (np.linspace(1, 0.1, n), np.linspace(0.1, 1, n)):
        d = _dets(boxes, scores)
        thr = dict(nms=0.5, ios=0.65, centre=4.)[method]
        ref = _naive_greedy(d, method, thr)
        assert len(ref) == n // 2  # every other box
        keep = merge_detections(d, method, iou_thr=thr, ios_thr=thr,
                                centre_dist_um=thr, mpp=1., block_size=20,
                                max_block_boxes=8)
        np.testing.assert_array_equal(keep, ref)


def test_merge_scales_to_1e5_boxes():
    rng = np.random.default_rng(3)
    # 10^5 boxes on a 40k x 40k px slide with 2 copies of every cell
    cells = _random_dets(50000, 40000, rng, smin=20, smax=60)
    jitter = rng.normal(0, 1, cells['bboxes'].shape).astype(np.float32)
    d = concat_dets([cells, dict(cells, bboxes=cells['bboxes'] + jitter)])
    t = time.time()
    keep = merge_detections(d, 'nms')
    elapsed = time.time() - t
    assert len(keep) < 52000 and len(keep) > 45000
    assert elapsed < 20, f'merging 1e5 boxes took {elapsed:.1f} s'
