"""Area under the ROC curve of an abnormal-vs-normal patch classifier.

Registered in ``mmpretrain``'s METRICS so a classifier config lists it next to
``Accuracy``::

    val_evaluator = [dict(type='Accuracy', topk=1),
                     dict(type='ROCAUC', normal_index=0)]
"""
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS
from scipy.stats import rankdata


def binary_roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC from scores and binary labels (Mann-Whitney U statistic).

    Ties get their average rank, so tied positive/negative pairs count 1/2,
    as in ``sklearn.metrics.roc_auc_score``.

    Args:
        scores (np.ndarray[N]): Score of the positive class (higher = more
            likely positive).
        positive (np.ndarray[N]): bool, True for positive samples.

    Returns:
        float: AUC in [0, 1]; ``nan`` when one class is absent.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    ranks = rankdata(scores)  # average ranks for ties, 1-based
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.
    return float(u / (n_pos * n_neg))


@METRICS.register_module()
class ROCAUC(BaseMetric):
    """ROC-AUC of "abnormal" (any class but ``normal_index``) vs normal.

    The abnormal score of a sample is ``1 - pred_score[normal_index]``, so
    the metric serves binary (normal, abnormal) and multi-class (normal plus
    abnormal classes) patch classifiers alike.

    Args:
        normal_index (int): Index of the normal class. Defaults to 0.
        collect_device (str): Device to gather results on. Defaults to 'cpu'.
        prefix (str, optional): Metric-name prefix; defaults to ``'pcn'``
            (reported as ``pcn/roc_auc``).
    """
    default_prefix: Optional[str] = 'pcn'

    def __init__(self, normal_index: int = 0, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.normal_index = int(normal_index)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the abnormal score and label of every sample.

        Reads ``pred_score`` (Tensor[num_classes], softmax) and ``gt_label``
        of each data sample.
        """
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError('ROCAUC needs pred_score in the predictions '
                               '(a classifier head that outputs scores)')
            score = sample['pred_score']
            label = int(torch.as_tensor(sample['gt_label']).reshape(-1)[0])
            self.results.append(
                (1. - float(score[self.normal_index]),
                 label != self.normal_index))

    def compute_metrics(self, results: List) -> dict:
        """Return ``{'roc_auc': AUC in %}`` over all stored samples."""
        scores = np.array([r[0] for r in results], dtype=np.float64)
        positive = np.array([r[1] for r in results], dtype=bool)
        return dict(roc_auc=100. * binary_roc_auc(scores, positive))


__all__ = ['ROCAUC', 'binary_roc_auc']
