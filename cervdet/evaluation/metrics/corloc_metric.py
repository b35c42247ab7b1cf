"""Correct Localisation (CorLoc), the localisation measure of weakly
supervised detection (Deselaers et al., 2012; used by WSDDN, OICR).

Registered in mmdet's METRICS::

    val_evaluator = [dict(type='CocoMetric', ...),
                     dict(type='CorLocMetric', iou_thr=0.5)]

Reported as ``corloc/<class>`` (classes that occur) and ``corloc/mean``, as
fractions in [0, 1] like mmdet's detection metrics.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import METRICS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .array_utils import to_numpy


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes: mmdet's ``bbox_overlaps`` on numpy arrays.

    Computed in float64 with ``eps=1e-12`` (a pair whose union is 0 has IoU
    0); areas are ``(x2-x1)*(y2-y1)`` as everywhere in mmdet.

    Args:
        a (np.ndarray): ``[N, 4]``.
        b (np.ndarray): ``[M, 4]``.

    Returns:
        np.ndarray: float64 ``[N, M]``.
    """
    a = torch.from_numpy(np.asarray(a, np.float64).reshape(-1, 4))
    b = torch.from_numpy(np.asarray(b, np.float64).reshape(-1, 4))
    return bbox_overlaps(a, b, mode='iou', eps=1e-12).numpy()


def corloc_hits(pred_bboxes: np.ndarray, pred_scores: np.ndarray,
                pred_labels: np.ndarray, gt_bboxes: np.ndarray,
                gt_labels: np.ndarray, iou_thr: float = 0.5
                ) -> Tuple[np.ndarray, np.ndarray]:
    """CorLoc hits of one image.

    For every class ``c`` of the ground truth, the image is a hit for ``c``
    when its highest-scoring predicted box of class ``c`` has IoU >=
    ``iou_thr`` with a ground-truth box of class ``c`` (no prediction of
    ``c``: a miss).

    Args:
        pred_bboxes (np.ndarray): ``[N, 4]`` xyxy.
        pred_scores (np.ndarray): ``[N]``.
        pred_labels (np.ndarray): ``[N]`` class indices.
        gt_bboxes (np.ndarray): ``[M, 4]`` xyxy, same frame as the
            predictions.
        gt_labels (np.ndarray): ``[M]`` class indices.
        iou_thr (float): IoU of a correct localisation.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``classes`` (int64 ``[K]``, sorted
        classes of the ground truth) and ``hits`` (bool ``[K]``).
    """
    pred_bboxes = np.asarray(pred_bboxes, np.float64).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, np.float64).reshape(-1)
    pred_labels = np.asarray(pred_labels, np.int64).reshape(-1)
    gt_bboxes = np.asarray(gt_bboxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    classes = np.unique(gt_labels)
    hits = np.zeros(len(classes), dtype=bool)
    if len(classes) == 0 or len(pred_labels) == 0:
        return classes, hits
    # top prediction of each class: sort by (label, -score), take firsts
    order = np.lexsort((-pred_scores, pred_labels))
    labels_sorted = pred_labels[order]
    first = np.flatnonzero(np.r_[True, labels_sorted[1:] != labels_sorted[:-1]])
    top_labels = labels_sorted[first]
    top_boxes = pred_bboxes[order[first]]
    has_pred = np.isin(classes, top_labels)
    if not has_pred.any():
        return classes, hits
    cls = classes[has_pred]
    boxes = top_boxes[np.searchsorted(top_labels, cls)]   # [K', 4]
    ious = box_iou(boxes, gt_bboxes)                      # [K', M]
    same = cls[:, None] == gt_labels[None, :]
    hits[has_pred] = (np.where(same, ious, -1.) >= iou_thr).any(axis=1)
    return classes, hits


def _unflip(bboxes: np.ndarray, img_shape: Sequence[int],
            direction: Optional[str]) -> np.ndarray:
    """Undo mmdet's ``RandomFlip`` of xyxy boxes in a ``(h, w)`` image."""
    h, w = img_shape[:2]
    out = bboxes.copy()
    if direction in ('horizontal', 'diagonal'):
        out[:, 0], out[:, 2] = w - bboxes[:, 2], w - bboxes[:, 0]
    if direction in ('vertical', 'diagonal'):
        out[:, 1], out[:, 3] = h - bboxes[:, 3], h - bboxes[:, 1]
    return out


@METRICS.register_module()
class CorLocMetric(BaseMetric):
    """Correct Localisation per class and its mean.

    ``CorLoc_c = hits_c / (#images whose ground truth contains c)`` with a
    hit when the top-scoring predicted box of class ``c`` in the image has
    IoU >= ``iou_thr`` with a ground-truth box of class ``c`` (see
    :func:`corloc_hits`). ``corloc/mean`` averages over the classes that
    occur in the evaluated images; classes that do not occur are not
    reported. Crowd / ignored ground truth is not used.

    Ground truth, from each data sample:

    - ``instances`` (in the metainfo, e.g. ``PackDetInputs(meta_keys=``
      :data:`~cervdet.datasets.weak_coco.WEAK_TEST_META_KEYS` ``)``): boxes in
      original image coordinates, exact whatever the pipeline; else
    - ``gt_instances`` (a test pipeline with ``LoadAnnotations``): in the
      frame given by ``gt_frame``. mmdet's and cervdet's test pipelines load
      annotations *after* ``Resize``, so the boxes are in original
      coordinates (``'original'``, default); when ``LoadAnnotations`` comes
      before ``Resize`` (e.g. inside ``ProposalBroadcaster``) they are
      resized (and possibly flipped) with the image: ``'resized'`` maps them
      back with ``scale_factor`` (and ``flip_direction``).

    Predictions (``pred_instances``) are in original coordinates (mmdet's
    ``rescale=True`` in testing). Works in distributed evaluation (each rank
    keeps per-image hits; :class:`~mmengine.evaluator.BaseMetric` gathers
    them).

    Args:
        iou_thr (float): IoU of a correct localisation. Defaults to 0.5.
        gt_frame (str): ``'original'`` or ``'resized'``: frame of
            ``gt_instances`` (see above). Defaults to ``'original'``.
        collect_device (str): Device to gather results on. Defaults to 'cpu'.
        prefix (str, optional): Metric-name prefix; defaults to ``'corloc'``.
    """
    default_prefix: Optional[str] = 'corloc'

    def __init__(self,
                 iou_thr: float = 0.5,
                 gt_frame: str = 'original',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if gt_frame not in ('original', 'resized'):
            raise ValueError('CorLocMetric: gt_frame must be "original" or '
                             f'"resized", got {gt_frame!r}')
        if not 0. < iou_thr <= 1.:
            raise ValueError(f'CorLocMetric: iou_thr must be in (0, 1], got '
                             f'{iou_thr}')
        self.iou_thr = float(iou_thr)
        self.gt_frame = gt_frame

    def _ground_truth(self, sample: dict) -> Tuple[np.ndarray, np.ndarray]:
        """Non-ignored gt boxes (original xyxy) and labels of a sample."""
        if 'instances' in sample:
            inst = [i for i in sample['instances']
                    if not i.get('ignore_flag', 0)]
            boxes = np.asarray([i['bbox'] for i in inst],
                               np.float64).reshape(-1, 4)
            return boxes, np.asarray([i['bbox_label'] for i in inst],
                                     np.int64)
        gt = sample.get('gt_instances')
        if gt is None or 'bboxes' not in gt:
            raise KeyError(
                'CorLocMetric needs the ground truth in the data samples: add '
                "dict(type='LoadAnnotations', with_bbox=True) to the test "
                "pipeline, or 'instances' to PackDetInputs' meta_keys "
                '(cervdet.datasets.weak_coco.WEAK_TEST_META_KEYS)')
        boxes = to_numpy(gt['bboxes']).astype(np.float64).reshape(-1, 4)
        labels = to_numpy(gt['labels']).astype(np.int64).reshape(-1)
        if self.gt_frame == 'resized' and len(boxes):
            if sample.get('flip', False):
                boxes = _unflip(boxes, sample['img_shape'],
                                sample.get('flip_direction'))
            sx, sy = np.asarray(sample.get('scale_factor', (1., 1.)),
                                np.float64).reshape(-1)[:2]
            boxes = boxes / np.array([sx, sy, sx, sy])
        elif len(boxes):
            h, w = sample['ori_shape'][:2]
            if (boxes[:, 2].max() > w + 1) or (boxes[:, 3].max() > h + 1):
                raise ValueError(
                    f'CorLocMetric: gt boxes of {sample.get("img_path")} '
                    f'reach beyond the original image ({w}x{h}): they were '
                    'resized with the image (LoadAnnotations before Resize); '
                    "set gt_frame='resized'")
        return boxes, labels

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the classes and hits of every image.

        Reads ``pred_instances`` (``bboxes`` [N, 4] original xyxy,
        ``scores`` [N], ``labels`` [N]) and the ground truth (see the class
        docstring) of each data sample.
        """
        for sample in data_samples:
            pred = sample['pred_instances']
            gt_boxes, gt_labels = self._ground_truth(sample)
            classes, hits = corloc_hits(
                to_numpy(pred['bboxes']), to_numpy(pred['scores']),
                to_numpy(pred['labels']), gt_boxes, gt_labels, self.iou_thr)
            self.results.append((classes, hits))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """``{<class>: CorLoc}`` for the classes that occur, and ``mean``."""
        classes = [r[0] for r in results]
        hits = [r[1] for r in results]
        classes = np.concatenate(classes) if classes else np.zeros(0, int)
        hits = np.concatenate(hits) if hits else np.zeros(0, bool)
        names = (self.dataset_meta or {}).get('classes')
        num = max(len(names) if names else 0,
                  int(classes.max()) + 1 if classes.size else 0)
        count = np.bincount(classes, minlength=num)
        hit = np.bincount(classes, weights=hits.astype(np.float64),
                          minlength=num)
        if not count.any():
            print_log('CorLocMetric: no evaluated image has ground-truth '
                      'boxes; corloc/mean is nan', logger='current',
                      level=30)
            return dict(mean=float('nan'))
        occur = np.flatnonzero(count)
        corloc = hit[occur] / count[occur]
        out = {}
        for c, v in zip(occur, corloc):
            name = names[c] if names and c < len(names) else f'class_{c}'
            out[str(name)] = float(v)
        out['mean'] = float(corloc.mean())
        return out


__all__ = ['CorLocMetric', 'corloc_hits']
