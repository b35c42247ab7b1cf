"""ROI-level (and cell-level) classification metrics of the weakly
supervised ROI classifier (Shi et al., ISBI 2022).

A config lists it as the evaluator of an ROI classifier::

    val_evaluator = dict(type='ROIClassificationMetric')
    test_evaluator = val_evaluator

and gets ``roi/accuracy``, ``roi/precision_<class>``, ``roi/recall_<class>``,
``roi/f1_<class>``, ``roi/macro_f1``, ``roi/roc_auc_<class>``,
``roi/macro_roc_auc`` (all in %), ``roi/confusion_matrix`` (nested list,
rows = ground truth, columns = prediction) and, when cell labels and cell
predictions exist, ``roi/cell_accuracy``.
"""
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpretrain.registry import METRICS

from .roc_auc import binary_roc_auc


def confusion_matrix(gt: np.ndarray, pred: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Counts ``[C, C]``, row = ground truth class, column = prediction.

    Args:
        gt (np.ndarray): int ``[M]`` true labels in ``[0, C)``.
        pred (np.ndarray): int ``[M]`` predicted labels in ``[0, C)``.
        num_classes (int): ``C``.

    Returns:
        np.ndarray: int64 ``[C, C]``.
    """
    gt = np.asarray(gt, np.int64).reshape(-1)
    pred = np.asarray(pred, np.int64).reshape(-1)
    flat = np.bincount(gt * num_classes + pred, minlength=num_classes ** 2)
    return flat[:num_classes ** 2].reshape(num_classes, num_classes)


def per_class_prf(cm: np.ndarray) -> Dict[str, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix.

    ``precision = TP / (TP + FP)`` (nan when the class is never predicted),
    ``recall = TP / (TP + FN)`` (nan when the class is absent),
    ``F1 = 2 TP / (2 TP + FP + FN)`` (nan when the class is neither present
    nor predicted).

    Args:
        cm (np.ndarray): ``[C, C]`` counts, rows = ground truth.

    Returns:
        dict: ``precision``, ``recall``, ``f1``: float64 ``[C]`` in [0, 1].
    """
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    with np.errstate(divide='ignore', invalid='ignore'):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn),
                      np.nan)
    return dict(precision=precision, recall=recall, f1=f1)


def format_confusion_matrix(cm: np.ndarray, classes: Sequence[str]) -> str:
    """A readable table of a confusion matrix (rows = ground truth)."""
    classes = [str(c) for c in classes]
    width = max([len(c) for c in classes] + [len(str(int(cm.max())))
                                             if cm.size else 1, 7])
    head = 'gt \\ pred'.ljust(width) + ' ' + ' '.join(
        c.rjust(width) for c in classes)
    rows = [c.ljust(width) + ' ' + ' '.join(str(int(v)).rjust(width)
                                            for v in row)
            for c, row in zip(classes, cm)]
    return '\n'.join([head] + rows)


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-nan values (nan when there are none)."""
    values = np.asarray(values, np.float64)
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float('nan')


@METRICS.register_module()
class ROIClassificationMetric(BaseMetric):
    """ROI accuracy, per-class P/R/F1, one-vs-rest ROC-AUC, confusion matrix
    and cell accuracy.

    Reads from each prediction ``gt_label``, ``pred_score``
    (``Tensor[num_classes]``), ``pred_label`` (argmax of ``pred_score`` when
    missing) and, optionally, ``cell_labels`` ``Tensor[N]`` (-1 = unknown)
    with ``cell_pred_labels`` ``Tensor[N]``.

    Classes absent from the ground truth get ``nan`` recall and ROC-AUC (with
    a warning); macro values average the classes where they are defined.
    Values are in %.

    Args:
        classes (Sequence[str], optional): Class names used in the keys;
            defaults to ``dataset_meta['classes']``, else ``class_<i>``.
        collect_device (str): Device to gather results on. Defaults to 'cpu'.
        prefix (str, optional): Key prefix; defaults to ``'roi'``.
    """
    default_prefix: Optional[str] = 'roi'

    def __init__(self, classes: Optional[Sequence[str]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = tuple(classes) if classes is not None else None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store labels and scores of every ROI (and its cells)."""
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError('ROIClassificationMetric needs pred_score '
                               '(Tensor[num_classes]) in the predictions')
            if 'gt_label' not in sample:
                raise KeyError(
                    'ROIClassificationMetric needs gt_label: the ROI '
                    f'{sample.get("img_path", "")} has no roi_label in its '
                    'annotation file')
            score = torch.as_tensor(sample['pred_score']).float().cpu()
            gt = int(torch.as_tensor(sample['gt_label']).reshape(-1)[0])
            pred = sample.get('pred_label')
            pred = int(score.argmax()) if pred is None else int(
                torch.as_tensor(pred).reshape(-1)[0])
            res = dict(gt=gt, pred=pred, score=score.numpy())
            if 'cell_labels' in sample and 'cell_pred_labels' in sample:
                res['cell_gt'] = torch.as_tensor(
                    sample['cell_labels']).reshape(-1).cpu().numpy()
                res['cell_pred'] = torch.as_tensor(
                    sample['cell_pred_labels']).reshape(-1).cpu().numpy()
            self.results.append(res)

    def _class_names(self, num_classes: int) -> List[str]:
        """Names of the classes for the metric keys."""
        names = self.classes
        if names is None and self.dataset_meta:
            names = self.dataset_meta.get('classes')
        if names is None or len(names) != num_classes:
            if names is not None:
                warnings.warn(f'ROIClassificationMetric: {len(names)} class '
                              f'names for {num_classes} scores; using '
                              'class_<i>')
            names = [f'class_{i}' for i in range(num_classes)]
        return [str(n) for n in names]

    def compute_metrics(self, results: List[dict]) -> dict:
        """Compute all metrics (see the class docstring)."""
        if not results:
            raise ValueError('ROIClassificationMetric: no predictions')
        scores = np.stack([r['score'] for r in results]).astype(np.float64)
        gt = np.array([r['gt'] for r in results], np.int64)
        pred = np.array([r['pred'] for r in results], np.int64)
        num_classes = scores.shape[1]
        names = self._class_names(num_classes)
        if gt.min() < 0 or gt.max() >= num_classes:
            raise ValueError(f'ROIClassificationMetric: gt_label outside '
                             f'[0, {num_classes}) for {num_classes} scores')
        cm = confusion_matrix(gt, pred, num_classes)
        prf = per_class_prf(cm)
        metrics = dict(accuracy=100. * float((gt == pred).mean()))
        aucs = np.array([binary_roc_auc(scores[:, c], gt == c)
                         for c in range(num_classes)])
        absent = [names[c] for c in range(num_classes)
                  if not (gt == c).any()]
        if absent:
            warnings.warn(f'ROIClassificationMetric: classes {absent} are '
                          'absent from the ground truth; their recall and '
                          'ROC-AUC are nan and left out of the macro values')
        for c, name in enumerate(names):
            metrics[f'precision_{name}'] = 100. * prf['precision'][c]
            metrics[f'recall_{name}'] = 100. * prf['recall'][c]
            metrics[f'f1_{name}'] = 100. * prf['f1'][c]
            metrics[f'roc_auc_{name}'] = 100. * aucs[c]
        metrics['macro_f1'] = 100. * _nanmean(prf['f1'])
        metrics['macro_roc_auc'] = 100. * _nanmean(aucs)
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics['confusion_matrix'] = cm.tolist()
        cell = [r for r in results if 'cell_gt' in r]
        if cell:
            cgt = np.concatenate([r['cell_gt'] for r in cell])
            cpred = np.concatenate([r['cell_pred'] for r in cell])
            known = cgt >= 0
            if known.any():
                metrics['cell_accuracy'] = 100. * float(
                    (cgt[known] == cpred[known]).mean())
        print_log('ROI confusion matrix (rows: ground truth, columns: '
                  'prediction):\n' + format_confusion_matrix(cm, names),
                  logger='current')
        return metrics


__all__ = ['ROIClassificationMetric', 'confusion_matrix', 'per_class_prf',
           'format_confusion_matrix']
