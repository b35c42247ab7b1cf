"""COCO AP averaged over a low IoU range (0.10:0.70 by default), the mAP of
small cells used by Chai et al. (ISBI 2022) for semi-supervised cervical cell
detection, reported beside mmdet's standard COCO metrics.

Registered in mmdet's METRICS::

    val_evaluator = dict(type='IoURangeCocoMetric',
                         ann_file=data_root + 'annotations/val.json',
                         iou_range=(0.1, 0.7, 0.05))

Why not ``CocoMetric(iou_thrs=np.arange(.1, .71, .05))``: pycocotools'
``summarize`` finds the 0.5 and 0.75 thresholds by exact float equality
(``np.arange`` gives 0.5000000000000001, 0.75 is outside the range), so
``bbox_mAP_50`` / ``bbox_mAP_75`` become -1, and mmdet's class-wise table
reads "AP50/AP75" at threshold *positions* 0 and 5 (0.10 and 0.35 there).
This metric leaves the standard evaluation (0.50:0.95) untouched and runs a
second ``COCOeval`` whose ``params.iouThrs`` is the range.
"""
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.datasets.api_wrappers import COCOeval, COCOevalMP
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import MMLogger
from terminaltables import AsciiTable


def iou_thresholds(iou_range: Sequence[float]) -> np.ndarray:
    """IoU thresholds ``start, start + step, ..., stop`` (both ends included).

    Rounded to 10 decimals so that 0.5 is exactly ``0.5`` (pycocotools looks
    thresholds up by float equality).

    Args:
        iou_range (Sequence[float]): ``(start, stop, step)`` with
            ``0 < start <= stop <= 1``, ``step > 0`` and ``stop - start`` a
            multiple of ``step``.

    Returns:
        np.ndarray: float64 ``[T]``.
    """
    if len(iou_range) != 3:
        raise ValueError('IoURangeCocoMetric: iou_range must be (start, stop, '
                         f'step), got {iou_range!r}')
    start, stop, step = (float(v) for v in iou_range)
    if not (0. < start <= stop <= 1.) or step <= 0.:
        raise ValueError('IoURangeCocoMetric: iou_range needs 0 < start <= '
                         f'stop <= 1 and step > 0, got {iou_range!r}')
    steps = (stop - start) / step
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f'IoURangeCocoMetric: iou_range {iou_range!r}: '
                         f'stop - start ({stop - start:g}) is not a multiple '
                         f'of step ({step:g})')
    return np.round(np.linspace(start, stop, int(round(steps)) + 1), 10)


def range_ap(precision: np.ndarray) -> Tuple[float, np.ndarray]:
    """Overall and per-class AP from a COCOeval precision array.

    Averaged as pycocotools' ``summarize`` does: over the valid (> -1)
    entries of all thresholds, recall points (and classes for the overall
    value), area range "all", the last ``maxDets``.

    Args:
        precision (np.ndarray): ``COCOeval.eval['precision']``,
            ``[T, R, K, A, M]`` (IoU thresholds, recall points, classes,
            area ranges, max detections).

    Returns:
        tuple[float, np.ndarray]: overall AP (-1 when no class has ground
        truth, as pycocotools) and per-class AP ``[K]`` (nan for a class
        without ground truth).
    """
    p = precision[:, :, :, 0, -1]                          # [T, R, K]
    valid = p > -1
    num = valid.sum(axis=(0, 1))
    per_class = np.where(
        num > 0, np.where(valid, p, 0.).sum(axis=(0, 1)) / np.maximum(num, 1),
        np.nan)
    overall = float(p[valid].mean()) if valid.any() else -1.
    return overall, per_class


@METRICS.register_module()
class IoURangeCocoMetric(CocoMetric):
    """mmdet's :class:`~mmdet.evaluation.metrics.CocoMetric` plus COCO AP
    averaged over an IoU range, overall and per class.

    Results (with the default prefix ``coco`` and range 0.10:0.70):

    - everything ``CocoMetric`` reports with its own ``iou_thrs`` (default
      0.50:0.95): ``coco/bbox_mAP``, ``coco/bbox_mAP_50``,
      ``coco/bbox_mAP_75``, ... (rounded to 3 decimals by mmdet);
    - ``coco/bbox_mAP_10_70``: AP over the range (pycocotools' averaging,
      classes without ground truth left out), not rounded;
    - ``coco/<class>_AP_10_70`` per class when ``range_classwise``: nan for a
      class without ground truth in the evaluated images (its detections are
      not counted, as in COCO).

    With ``metric=['bbox', 'segm']`` the mask values are
    ``coco/segm_mAP_10_70`` and ``coco/<class>_segm_AP_10_70``; ``proposal``
    metrics get no range value. Both evaluations use ``maxDets`` =
    ``proposal_nums`` and the last of them for AP (1000 by default, as
    mmdet's ``bbox_mAP``). The range needs a second ``COCOeval.evaluate``
    (IoUs are computed twice; cheap beside inference).

    Args:
        iou_range (Sequence[float]): ``(start, stop, step)`` of the IoU
            thresholds, both ends included. Defaults to ``(0.1, 0.7, 0.05)``.
        range_classwise (bool): Report the per-class range AP. Defaults to
            True.
        iou_thrs (float | Sequence[float], optional): thresholds of the
            standard evaluation (``CocoMetric``'s argument); rounded to 10
            decimals. Without 0.5 / 0.75 among them ``mAP_50`` / ``mAP_75``
            are -1 (a warning says so). Defaults to 0.50:0.95.
        **kwargs: Other :class:`~mmdet.evaluation.metrics.CocoMetric`
            arguments (``ann_file``, ``metric``, ``classwise``,
            ``proposal_nums``, ``format_only``, ``outfile_prefix``, ...).
    """

    def __init__(self,
                 iou_range: Sequence[float] = (0.1, 0.7, 0.05),
                 range_classwise: bool = True,
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 **kwargs) -> None:
        if iou_thrs is not None:
            iou_thrs = np.round(np.asarray(iou_thrs, np.float64).reshape(-1),
                                10)
        super().__init__(iou_thrs=iou_thrs, **kwargs)
        self.range_iou_thrs = iou_thresholds(iou_range)
        start, stop = self.range_iou_thrs[0], self.range_iou_thrs[-1]
        self.range_suffix = f'{round(start * 100):d}_{round(stop * 100):d}'
        self.range_text = f'{start:.2f}:{stop:.2f}:{float(iou_range[2]):.2f}'
        self.range_classwise = range_classwise
        missing = [t for t in (0.5, 0.75) if t not in self.iou_thrs]
        if missing:
            MMLogger.get_current_instance().warning(
                f'IoURangeCocoMetric: iou_thrs {list(self.iou_thrs)} lack '
                f'{missing}: mAP_50 / mAP_75 of the standard evaluation will '
                'be -1 (leave iou_thrs unset for 0.50:0.95; the range is '
                'set with iou_range)')

    def _gt_per_class(self) -> np.ndarray:
        """Number of non-crowd ground-truth boxes of each ``cat_ids`` class
        in the evaluated images, ``[K]``."""
        anns = self._coco_api.load_anns(self._coco_api.get_ann_ids(
            img_ids=self.img_ids, cat_ids=self.cat_ids))
        cats = np.asarray([a['category_id'] for a in anns
                           if not a.get('iscrowd', 0)
                           and not a.get('ignore', 0)], np.int64)
        return (cats[:, None] == np.asarray(self.cat_ids)[None]).sum(axis=0)

    def _evaluate_range(self, predictions: List[dict],
                        iou_type: str) -> Tuple[float, np.ndarray]:
        """Overall and per-class range AP of ``predictions`` (COCO result
        dicts); AP 0 for classes with ground truth when there are none."""
        if not predictions:
            has_gt = self._gt_per_class() > 0
            per_class = np.where(has_gt, 0., np.nan)
            return (0. if has_gt.any() else -1.), per_class
        coco_dt = self._coco_api.loadRes(predictions)
        evaluator = COCOevalMP if self.use_mp_eval else COCOeval
        coco_eval = evaluator(self._coco_api, coco_dt, iou_type)
        coco_eval.params.catIds = self.cat_ids
        coco_eval.params.imgIds = self.img_ids
        coco_eval.params.maxDets = list(self.proposal_nums)
        coco_eval.params.iouThrs = self.range_iou_thrs
        coco_eval.evaluate()
        coco_eval.accumulate()
        return range_ap(coco_eval.eval['precision'])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's results plus the range AP (see the class docstring).

        Args:
            results (list): ``(gt, pred)`` pairs stored by ``process``.

        Returns:
            dict[str, float]: metric name (without prefix) -> value.
        """
        eval_results = super().compute_metrics(results)
        if self.format_only or not results:
            return eval_results
        logger: MMLogger = MMLogger.get_current_instance()
        _, preds = zip(*results)
        names = [self._coco_api.load_cats(c)[0]['name'] for c in self.cat_ids]
        with tempfile.TemporaryDirectory() as tmp_dir:
            result_files = self.results2json(preds, osp.join(tmp_dir, 'range'))
            for metric in self.metrics:
                if metric not in ('bbox', 'segm'):
                    continue
                predictions = load(result_files[metric])
                if metric == 'segm':  # mask areas, as CocoMetric does
                    for x in predictions:
                        x.pop('bbox')
                overall, per_class = self._evaluate_range(predictions, metric)
                suffix = self.range_suffix
                eval_results[f'{metric}_mAP_{suffix}'] = overall
                table = [['category', f'AP_{suffix}']]
                for name, ap in zip(names, per_class):
                    table.append([name, f'{ap:.3f}'])
                    if self.range_classwise:
                        key = name if metric == 'bbox' else f'{name}_{metric}'
                        eval_results[f'{key}_AP_{suffix}'] = float(ap)
                table.append(['mean', f'{overall:.3f}'])
                logger.info(f'{metric} AP over IoU {self.range_text}\n'
                            f'{AsciiTable(table).table}')
        return eval_results


__all__ = ['IoURangeCocoMetric', 'iou_thresholds', 'range_ap']
