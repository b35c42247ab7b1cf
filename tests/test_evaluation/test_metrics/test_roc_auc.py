"""ROC-AUC of the PCN's abnormal score (mmpretrain metric)."""
import math

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import METRICS
from sklearn.metrics import roc_auc_score

from cervdet.evaluation.metrics import ROCAUC, binary_roc_auc


def test_hand_computed_and_ties():
    # classic example: 3 of the 4 positive/negative pairs are ordered
    assert binary_roc_auc([0.1, 0.4, 0.35, 0.8],
                          [False, False, True, True]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts one half
    assert binary_roc_auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert math.isnan(binary_roc_auc([0.1, 0.2], [True, True]))


def test_matches_sklearn_on_random_scores_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, size=500) / 20.  # many ties
    labels = rng.random(500) < 0.3
    assert binary_roc_auc(scores, labels) == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12)


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build as a classifier config does: default scope 'mmpretrain'."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def test_metric_on_data_samples_binary_and_multiclass():
    metric = METRICS.build(dict(type='ROCAUC', normal_index=0))
    assert isinstance(metric, ROCAUC)
    # abnormal score = 1 - p(normal): neg 0.2, 0.7; pos 0.65, 0.9 -> 3/4
    samples = [
        dict(pred_score=torch.tensor([0.8, 0.2]), gt_label=torch.tensor([0])),
        dict(pred_score=torch.tensor([0.3, 0.7]), gt_label=torch.tensor([0])),
        dict(pred_score=torch.tensor([0.35, 0.65]), gt_label=torch.tensor([1])),
        dict(pred_score=torch.tensor([0.1, 0.9]), gt_label=torch.tensor([1])),
    ]
    metric.process(None, samples)
    assert metric.evaluate(4) == {'pcn/roc_auc': pytest.approx(75.)}
    # multi-class PCN (normal + 2 abnormal classes): abnormal = label != 0
    multi = METRICS.build(dict(type='ROCAUC', normal_index=0))
    multi.process(None, [
        dict(pred_score=torch.tensor([0.7, 0.2, 0.1]),
             gt_label=torch.tensor([0])),
        dict(pred_score=torch.tensor([0.2, 0.1, 0.7]),
             gt_label=torch.tensor([2])),
        dict(pred_score=torch.tensor([0.3, 0.6, 0.1]),
             gt_label=torch.tensor([1])),
    ])
    assert multi.evaluate(3) == {'pcn/roc_auc': pytest.approx(100.)}
