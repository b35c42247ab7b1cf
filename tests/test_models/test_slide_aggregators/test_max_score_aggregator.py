"""MaxScoreAggregator: padding ignored, empty bags score 0, gradient to
the winning cell; registration of all aggregators."""
import pytest
import torch
from mmengine.registry import DefaultScope

from cervdet.models.slide_aggregators import (
    AttentionMILAggregator,
    MaxScoreAggregator,
    TopKMeanAggregator,
    masked_max,
)

# 3 slides, unsorted cells; slide 1 has no valid cell, padding holds
# garbage that must never win
SCORES = torch.tensor([[0.2, 0.9, 0.5, 0.99, 5.0],
                       [7.0, 8.0, 9.0, 9.0, 9.0],
                       [0.1, 0.4, 0.3, 0.8, 0.6]])
MASK = torch.tensor([[1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0],
                     [1, 1, 1, 1, 1]]).bool()


def _build(cfg):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def test_registered():
    assert isinstance(_build(dict(type='MaxScoreAggregator')),
                      MaxScoreAggregator)
    agg = _build(dict(type='TopKMeanAggregator', k=3))
    assert isinstance(agg, TopKMeanAggregator) and agg.k == 3
    assert isinstance(_build(dict(type='AttentionMILAggregator',
                                  in_channels=4)), AttentionMILAggregator)


def test_max_score():
    agg = MaxScoreAggregator()
    out, att = agg(SCORES, MASK, return_attention=True)
    # padding (0.99, 5.0) ignored; empty slide -> 0, not -inf / NaN
    assert out.tolist() == pytest.approx([0.9, 0., 0.8])
    assert att.tolist() == [[0, 1, 0, 0, 0], [0] * 5, [0, 0, 0, 1, 0]]
    assert torch.equal(agg.predict_proba(SCORES, MASK), out)
    best, arg = masked_max(SCORES, MASK)
    assert arg.tolist() == [1, 0, 3]


def test_max_score_gradient_reaches_winner():
    s = SCORES.clone().requires_grad_(True)
    MaxScoreAggregator()(s, MASK).sum().backward()
    expect = torch.zeros_like(SCORES)
    expect[0, 1] = expect[2, 3] = 1.
    assert torch.equal(s.grad, expect)
