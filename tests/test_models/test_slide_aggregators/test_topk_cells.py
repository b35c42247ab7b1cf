"""topk_cells: best valid cells first, k > K, bad k."""
import pytest
import torch

from cervdet.models.slide_aggregators import (
    MaxScoreAggregator,
    TopKMeanAggregator,
    topk_cells,
)

# 3 slides, unsorted cells; slide 1 has no valid cell, padding holds
# garbage that must never win
SCORES = torch.tensor([[0.2, 0.9, 0.5, 0.99, 5.0],
                       [7.0, 8.0, 9.0, 9.0, 9.0],
                       [0.1, 0.4, 0.3, 0.8, 0.6]])
MASK = torch.tensor([[1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0],
                     [1, 1, 1, 1, 1]]).bool()


def test_topk_cells_sorted_valid_first():
    values, index, valid = topk_cells(SCORES, 2, MASK)
    assert torch.allclose(values, torch.tensor([[0.9, 0.5], [0., 0.],
                                                [0.8, 0.6]]))
    assert index[0].tolist() == [1, 2] and index[2].tolist() == [3, 4]
    assert valid.tolist() == [[True, True], [False, False], [True, True]]
    # k larger than the bag: k' = K, invalid slots at the end
    values, index, valid = topk_cells(SCORES, 10, MASK)
    assert values.shape == (3, 5)
    assert valid[0].tolist() == [True, True, True, False, False]
    assert index[0, :3].tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match='k >= 1'):
        topk_cells(SCORES, 0, MASK)


def test_bad_shapes():
    with pytest.raises(ValueError, match='mask must be'):
        MaxScoreAggregator()(SCORES, MASK[:, :3])
    with pytest.raises(ValueError, match='feats must be'):
        TopKMeanAggregator()(SCORES, MASK, torch.zeros(3, 4, 2))
