"""Tests of ROIClassificationMetric against hand-computed values."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from cervdet.evaluation.metrics import (
    ROIClassificationMetric,
    confusion_matrix,
    per_class_prf,
)
from cervdet.evaluation.metrics.roi_classification_metric import format_confusion_matrix

GT = [0, 0, 0, 1, 1, 2, 2, 2]
SCORES = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.5, 0.2], [0.2, 0.7, 0.1],
          [0.1, 0.4, 0.5], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.5, 0.2, 0.3]]
# argmax: [0, 0, 1, 1, 2, 2, 2, 0]


def _samples(gt, scores, cells=None):
    out = []
    for k, (g, s) in enumerate(zip(gt, scores)):
        ds = DataSample().set_gt_label(g).set_pred_score(torch.tensor(s))
        ds.set_pred_label(int(np.argmax(s)))
        if cells and k in cells:
            lab, pred = cells[k]
            ds.set_field(torch.tensor(lab), 'cell_labels')
            ds.set_field(torch.tensor(pred), 'cell_pred_labels')
        out.append(ds)
    return out


def _evaluate(samples, classes=('NILM', 'LSIL', 'HSIL')):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        evaluator = Evaluator(dict(type='ROIClassificationMetric'))
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_pure_functions():
    cm = confusion_matrix(GT, np.argmax(SCORES, 1), 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    prf = per_class_prf(cm)
    np.testing.assert_allclose(prf['precision'], [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(prf['recall'], [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(prf['f1'], [2 / 3, 1 / 2, 2 / 3])
    table = format_confusion_matrix(cm, ['NILM', 'LSIL', 'HSIL'])
    assert table.splitlines()[1].split() == ['NILM', '2', '1', '0']


def test_three_class_hand_computed():
    cells = {0: ([0, -1, 1], [0, 1, 0]), 5: ([2], [2])}
    m = _evaluate(_samples(GT, SCORES, cells))
    assert m['roi/accuracy'] == pytest.approx(62.5)
    assert m['roi/precision_NILM'] == pytest.approx(200 / 3)
    assert m['roi/recall_LSIL'] == pytest.approx(50.)
    assert m['roi/f1_HSIL'] == pytest.approx(200 / 3)
    assert m['roi/macro_f1'] == pytest.approx(100 * 11 / 18)
    # one-vs-rest AUC by counting pairs: 14/15, 11/12, 14/15
    assert m['roi/roc_auc_NILM'] == pytest.approx(100 * 14 / 15)
    assert m['roi/roc_auc_LSIL'] == pytest.approx(100 * 11 / 12)
    assert m['roi/roc_auc_HSIL'] == pytest.approx(100 * 14 / 15)
    assert m['roi/macro_roc_auc'] == pytest.approx(
        100 * (14 / 15 + 11 / 12 + 14 / 15) / 3)
    assert m['roi/confusion_matrix'] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    # cells: -1 ignored, 2 of 3 labelled cells right
    assert m['roi/cell_accuracy'] == pytest.approx(200 / 3)


def test_absent_class_is_nan_and_left_out():
    gt = [0, 0, 1, 1]
    scores = [[0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1],
              [0.6, 0.3, 0.1]]  # predictions 0, 2, 1, 0
    with pytest.warns(UserWarning, match=r"\['HSIL'\] are absent"):
        m = _evaluate(_samples(gt, scores))
    assert math.isnan(m['roi/recall_HSIL'])
    assert math.isnan(m['roi/roc_auc_HSIL'])
    assert m['roi/precision_HSIL'] == 0.0  # predicted once, wrongly
    assert m['roi/f1_HSIL'] == 0.0
    # NILM AUC: pos {0.9, 0.2}, neg {0.1, 0.6} -> 3 of 4 pairs
    assert m['roi/roc_auc_NILM'] == pytest.approx(75.)
    # LSIL AUC: pos {0.8, 0.3}, neg {0.05, 0.3}: 1 + 1 + 0.5 (tie) + 1
    assert m['roi/roc_auc_LSIL'] == pytest.approx(87.5)
    assert m['roi/macro_roc_auc'] == pytest.approx((75. + 87.5) / 2)
    assert 'roi/cell_accuracy' not in m
    assert m['roi/confusion_matrix'] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_errors_and_class_names():
    metric = ROIClassificationMetric(classes=['a', 'b'])  # 'a' absent
    with pytest.raises(KeyError, match='pred_score'):
        metric.process(None, [dict(gt_label=torch.tensor([0]))])
    with pytest.raises(KeyError, match='gt_label'):
        metric.process(None, [dict(pred_score=torch.tensor([0.4, 0.6]))])
    metric.process(None, [dict(gt_label=torch.tensor([1]),
                               pred_score=torch.tensor([0.4, 0.6]))])
    with pytest.warns(UserWarning, match=r"\['a'\] are absent"):
        m = metric.compute_metrics(metric.results)
    assert m['accuracy'] == 100. and 'f1_b' in m
