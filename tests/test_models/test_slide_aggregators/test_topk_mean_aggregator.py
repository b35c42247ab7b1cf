"""TopKMeanAggregator: hand values with padding, k > valid cells,
unsorted cells, zero-width bags."""
import pytest
import torch

from cervdet.models.slide_aggregators import (
    AttentionMILAggregator,
    MaxScoreAggregator,
    TopKMeanAggregator,
    topk_mean,
)

# 3 slides, unsorted cells; slide 1 has no valid cell, padding holds
# garbage that must never win
SCORES = torch.tensor([[0.2, 0.9, 0.5, 0.99, 5.0],
                       [7.0, 8.0, 9.0, 9.0, 9.0],
                       [0.1, 0.4, 0.3, 0.8, 0.6]])
MASK = torch.tensor([[1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0],
                     [1, 1, 1, 1, 1]]).bool()


def test_topk_mean_hand_values():
    agg = TopKMeanAggregator(k=2)
    out, att = agg(SCORES, MASK, return_attention=True)
    assert out.tolist() == pytest.approx([(0.9 + 0.5) / 2, 0.,
                                          (0.8 + 0.6) / 2])
    assert att[0].tolist() == pytest.approx([0, .5, .5, 0, 0])
    assert att[1].tolist() == [0.] * 5
    assert att[2].tolist() == pytest.approx([0, 0, 0, .5, .5])
    # k > valid cells: mean of the valid ones (3 cells of slide 0)
    out = TopKMeanAggregator(k=10)(SCORES, MASK)
    assert out.tolist() == pytest.approx([(0.2 + 0.9 + 0.5) / 3, 0.,
                                          (0.1 + 0.4 + 0.3 + 0.8 + 0.6) / 5])
    # cell order does not matter
    perm = torch.tensor([4, 2, 0, 3, 1])
    assert torch.allclose(topk_mean(SCORES[:, perm], MASK[:, perm], 2),
                          topk_mean(SCORES, MASK, 2))
    with pytest.raises(ValueError, match='k must be >= 1'):
        TopKMeanAggregator(k=0)


def test_zero_width_bags():
    s = torch.zeros(2, 0)
    m = torch.zeros(2, 0, dtype=torch.bool)
    assert MaxScoreAggregator()(s, m).tolist() == [0., 0.]
    assert TopKMeanAggregator()(s, m).tolist() == [0., 0.]
    agg = AttentionMILAggregator(in_channels=3, hidden=4)
    logit, att = agg(s, m, torch.zeros(2, 0, 3), return_attention=True)
    assert torch.isfinite(logit).all() and att.shape == (2, 0)
    # the empty-bag logit is the head's bias (h = 0)
    assert torch.allclose(logit, agg.head.bias.expand(2))
    # bags written without features ([0, 0]) are fine when K = 0
    assert torch.allclose(agg(s, m, torch.zeros(2, 0, 0)), logit)
