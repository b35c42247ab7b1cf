"""Slide screening metrics against hand-computed values (ties included),
the per-grade threshold calibration, call_grade and SlideScreeningMetric."""
import math

import numpy as np
import pytest
import torch

from cervdet.evaluation.metrics import (
    SlideScreeningMetric,
    calibrate_grade_thresholds,
    call_grade,
    sensitivity_at_specificity,
    slide_auc,
    topk_hit_rate,
    triage_share_at_full_sensitivity,
)

# positives 0.9, 0.4, 0.6; negatives 0.4 (tied with a positive), 0.2, 0.7
Y = [1, 1, 0, 0, 0, 1]
S = [0.9, 0.4, 0.4, 0.2, 0.7, 0.6]


def test_slide_auc_with_tie():
    # pairs won: 0.9 -> 3; 0.4 -> 1 + 0.5 (tie); 0.6 -> 2  => 6.5 / 9
    assert slide_auc(Y, S) == pytest.approx(6.5 / 9)
    assert math.isnan(slide_auc([0, 0], [0.1, 0.2]))


@pytest.mark.parametrize('spec,sens,thr', [
    (0.9, 1 / 3, 0.9),    # only t = 0.9 excludes all 3 negatives
    (0.6, 2 / 3, 0.6),    # spec(0.6) = 2/3
    (0.3, 1.0, 0.4),      # t = 0.4: the tied negative and positive are in
    (0.0, 1.0, 0.2),
    (1.0, 1 / 3, 0.9),
])
def test_sensitivity_at_specificity(spec, sens, thr):
    got, t = sensitivity_at_specificity(Y, S, spec, return_threshold=True)
    assert got == pytest.approx(sens)
    assert t == pytest.approx(thr)
    assert sensitivity_at_specificity(Y, S, spec) == pytest.approx(sens)


def test_sensitivity_at_specificity_edges():
    # a negative above every positive: spec 1 needs t above it -> sens 0
    sens, t = sensitivity_at_specificity([1, 0], [0.3, 0.8], 1.0,
                                         return_threshold=True)
    assert sens == 0. and t == math.inf
    assert math.isnan(sensitivity_at_specificity([1, 1], [0.3, 0.8]))
    with pytest.raises(ValueError, match=r'spec must be in \[0, 1\]'):
        sensitivity_at_specificity(Y, S, 1.5)
    with pytest.raises(ValueError, match='6 labels for 5 scores'):
        sensitivity_at_specificity(Y, S[:5])


def test_triage_share():
    # lowest positive 0.4; strictly below: 0.2 only (the tied 0.4 stays)
    assert triage_share_at_full_sensitivity(Y, S) == pytest.approx(1 / 6)
    assert triage_share_at_full_sensitivity([1, 0, 0], [0.9, 0.1, 0.2]) == \
        pytest.approx(2 / 3)
    assert math.isnan(triage_share_at_full_sensitivity([0, 0], [0.1, 0.2]))


def test_topk_hit_rate():
    hits = [[False, False, True], [True], [False] * 12 + [True]]
    assert topk_hit_rate(hits, k=2) == pytest.approx(1 / 3)
    assert topk_hit_rate(hits, k=3) == pytest.approx(2 / 3)
    assert topk_hit_rate(hits, k=13) == 1.
    assert topk_hit_rate([np.zeros(0, bool)], k=10) == 0.
    assert math.isnan(topk_hit_rate([], 10))


def test_calibrate_and_call_grade():
    grades = ['NILM', 'LSIL', 'HSIL']
    s = [0.1, 0.3, 0.5, 0.8, 0.4, 0.6, 0.7, 0.9]
    g = [0, 0, 0, 0, 1, 1, 2, 2]
    table = calibrate_grade_thresholds(s, g, grades, 1.0)
    assert list(table) == ['LSIL', 'HSIL']
    assert table['LSIL']['threshold'] == pytest.approx(0.4)
    assert table['LSIL']['specificity_negative'] == pytest.approx(0.5)
    assert table['LSIL']['num_slides'] == 4
    assert table['HSIL']['threshold'] == pytest.approx(0.7)
    assert table['HSIL']['specificity_negative'] == pytest.approx(0.75)
    assert table['HSIL']['sensitivity'] == 1.
    # 75 %: 3 of the 4 slides >= LSIL -> t = 0.6; 2 of 2 HSIL -> 0.7
    table75 = calibrate_grade_thresholds(s, g, grades, 0.75)
    assert table75['LSIL']['threshold'] == pytest.approx(0.6)
    assert table75['LSIL']['sensitivity'] == pytest.approx(0.75)
    assert table75['HSIL']['threshold'] == pytest.approx(0.7)
    js = dict(grades=grades, thresholds=table)
    assert call_grade(0.39, js) == 'NILM'
    assert call_grade(0.4, js) == 'LSIL'
    assert call_grade(0.65, js) == 'LSIL'
    assert call_grade(0.7, js) == 'HSIL'
    assert call_grade(0.5, {'LSIL': 0.4, 'HSIL': 0.7}) == 'LSIL'
    # a grade without validation slides is never called
    none = calibrate_grade_thresholds([0.1, 0.5], [0, 1], grades)
    assert none['HSIL']['threshold'] is None
    assert call_grade(0.99, dict(grades=grades, thresholds=none)) == 'LSIL'
    with pytest.raises(ValueError, match='target_sensitivity'):
        calibrate_grade_thresholds(s, g, grades, 0.)


def test_metric_class():
    metric = SlideScreeningMetric(specificity=0.6, topk=2)
    samples = []
    for i, (y, s) in enumerate(zip(Y, S)):
        d = dict(slide_score=s, is_positive=bool(y),
                 gt_label=torch.tensor([int(y)]))
        if i == 0:
            d['cell_hits'] = torch.tensor([False, True])
        if i == 1:
            d['cell_hits'] = torch.tensor([False, False, True])
        samples.append(d)
    metric.process(None, samples)
    res = metric.compute_metrics(metric.results)
    assert res['auc'] == pytest.approx(100 * 6.5 / 9)
    assert res['sens_at_spec60'] == pytest.approx(100 * 2 / 3)
    assert res['triage_share'] == pytest.approx(100 / 6)
    assert res['top2_hit_rate'] == pytest.approx(50.)
    assert res['num_positive'] == 3 and res['num_negative'] == 3
    # gt_label (negative_index 0) when is_positive is missing
    m2 = SlideScreeningMetric()
    m2.process(None, [dict(slide_score=0.8, gt_label=torch.tensor([2])),
                      dict(slide_score=0.1, gt_label=torch.tensor([0]))])
    res = m2.compute_metrics(m2.results)
    assert res['auc'] == 100. and res['sens_at_spec90'] == 100.
    with pytest.raises(KeyError, match='slide_score'):
        m2.process(None, [dict(gt_label=torch.tensor([0]))])
