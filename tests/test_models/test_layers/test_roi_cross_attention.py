"""Tests of the ROI-to-cells cross attention."""
import pytest
import torch

from cervdet.models.layers import ROICrossAttention


def test_shapes_masking_and_residual():
    torch.manual_seed(0)
    ca = ROICrossAttention(query_channels=6, key_channels=4, d_k=5)
    h_roi = torch.randn(2, 6)
    y = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 0, 1], [1, 1, 1]]).bool()
    h_t, s = ca(h_roi, y, mask)
    assert h_t.shape == (2, 6) and s.shape == (2, 3)
    assert torch.allclose(s.sum(1), torch.ones(2))
    assert s[0, 1].item() == 0.
    # hand computation for ROI 0
    q = ca.w_q(h_roi[0])
    k = ca.w_k(y[0, [0, 2]])
    v = ca.w_v(y[0, [0, 2]])
    ref = torch.softmax(k @ q / 5 ** 0.5, dim=0)
    assert torch.allclose(s[0, [0, 2]], ref, atol=1e-6)
    assert torch.allclose(h_t[0], h_roi[0] + ref @ v, atol=1e-6)
    # garbage on padding changes nothing
    y2 = y.clone()
    y2[0, 1] = float('inf')
    h_t2, s2 = ca(h_roi, y2, mask)
    assert torch.allclose(h_t, h_t2) and torch.allclose(s, s2)


def test_dv_mismatch_and_shape_errors():
    with pytest.raises(ValueError, match='d_v .* must equal'):
        ROICrossAttention(query_channels=1024, key_channels=768, d_v=512)
    ca = ROICrossAttention(query_channels=4, key_channels=3, d_k=2)
    with pytest.raises(ValueError, match='h_roi'):
        ca(torch.randn(2, 5), torch.randn(2, 3, 3), torch.ones(2, 3).bool())
    with pytest.raises(ValueError, match='key_channels'):
        ca(torch.randn(2, 4), torch.randn(2, 3, 4), torch.ones(2, 3).bool())
