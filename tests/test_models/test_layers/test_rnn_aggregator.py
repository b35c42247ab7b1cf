"""Tests of the plain LSTM / GRU ROI aggregators."""
import pytest
import torch

from cervdet.models.layers import RNNAggregator


@pytest.mark.parametrize('cell', ['lstm', 'gru', 'rnn'])
@pytest.mark.parametrize('bidirectional', [False, True])
def test_last_state_ignores_padding(cell, bidirectional):
    torch.manual_seed(0)
    m = RNNAggregator(cell=cell, in_channels=5, hidden_size=3,
                      bidirectional=bidirectional).eval()
    feats = torch.randn(2, 4, 5)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool()
    h, att = m(feats, mask)
    assert att is None and not m.has_attention
    assert h.shape == (2, 3 * (2 if bidirectional else 1))
    garbage = feats.clone()
    garbage[0, 2:] = 1e4
    h2, _ = m(garbage, mask)
    assert torch.allclose(h, h2, atol=1e-6)
    h_alone, _ = m(feats[:1, :2], mask[:1, :2])
    assert torch.allclose(h[:1], h_alone, atol=1e-6)


def test_last_is_final_forward_state():
    torch.manual_seed(0)
    m = RNNAggregator(cell='gru', in_channels=2, hidden_size=3).eval()
    feats = torch.randn(1, 3, 2)
    h, _ = m(feats, torch.ones(1, 3).bool())
    out, _ = m.rnn(feats)
    assert torch.allclose(h[0], out[0, -1], atol=1e-6)


def test_mean_pooling_and_errors():
    torch.manual_seed(0)
    m = RNNAggregator(cell='lstm', in_channels=2, hidden_size=3,
                      pooling='mean').eval()
    feats = torch.randn(1, 4, 2)
    mask = torch.tensor([[1, 1, 1, 0]]).bool()
    h, _ = m(feats, mask)
    out, _ = m.rnn(feats[:, :3])
    assert torch.allclose(h[0], out[0].mean(0), atol=1e-6)
    with pytest.raises(ValueError, match='cell must be'):
        RNNAggregator(cell='transformer')
    with pytest.raises(ValueError, match='pooling'):
        RNNAggregator(pooling='max')
