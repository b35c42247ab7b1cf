"""MetricProjectionHead: x = W2 relu(W1 H) (Chai et al., ISBI 2022)."""
import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.layers import MetricProjectionHead


def test_matches_two_fc_with_relu():
    head = MetricProjectionHead(4 * 2 * 2, hidden_channels=8, out_channels=3)
    feats = torch.randn(5, 4, 2, 2)
    expected = head.fc2(torch.relu(head.fc1(feats.flatten(1))))
    out = head(feats)
    assert out.shape == (5, 3)
    assert torch.allclose(out, expected)
    # [N, C] inputs, the same features already flattened
    assert torch.allclose(head(feats.flatten(1)), expected)


def test_empty_and_gradient():
    head = MetricProjectionHead(16, hidden_channels=8, out_channels=3)
    assert head(torch.zeros(0, 4, 2, 2)).shape == (0, 3)
    feats = torch.randn(2, 16, requires_grad=True)
    head(feats).sum().backward()
    assert feats.grad is not None and head.fc1.weight.grad is not None


def test_wrong_size_is_reported():
    head = MetricProjectionHead(16)
    with pytest.raises(ValueError, match='expects 16 features'):
        head(torch.randn(2, 4, 3, 3))


def test_registered_in_mmdet_with_defaults():
    head = MODELS.build(dict(type='MetricProjectionHead',
                             in_channels=256 * 7 * 7))
    assert isinstance(head, MetricProjectionHead)
    assert head.fc1.out_features == 1024 and head.fc2.out_features == 128
    assert head(torch.randn(2, 256, 7, 7)).shape == (2, 128)
