"""Tests of the Att-BLSTM global branch and its masking helpers."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

from cervdet.models.layers import AttBLSTM, masked_softmax
from cervdet.models.layers.att_blstm import compact_valid_first


def _bag(seed=0, b=3, n=6, c=8):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, n, c, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1],
                         [1, 0, 0, 0, 0, 0]]).bool()
    return feats, mask


def test_masked_softmax_hand_values():
    logits = torch.tensor([[0., math.log(3.), 5.]])
    mask = torch.tensor([[True, True, False]])
    w = masked_softmax(logits, mask)
    assert torch.allclose(w, torch.tensor([[0.25, 0.75, 0.]]))
    assert w[0, 2].item() == 0.
    # a row without any valid entry gives zeros, not NaN
    assert masked_softmax(logits, torch.zeros_like(mask)).abs().sum() == 0


def test_compact_valid_first_keeps_order():
    mask = torch.tensor([[False, True, False, True, True]])
    order, lengths = compact_valid_first(mask)
    assert order[0, :3].tolist() == [1, 3, 4]
    assert lengths.tolist() == [3]


def test_shapes_and_attention_sums_to_one():
    torch.manual_seed(0)
    feats, mask = _bag()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS
        m = MODELS.build(dict(type='AttBLSTM', in_channels=8, hidden_size=5))
    h, att = m(feats, mask)
    assert h.shape == (3, 10) and m.out_channels == 10
    assert att.shape == (3, 6)
    assert torch.allclose(att.sum(1), torch.ones(3))
    assert (att[~mask] == 0).all()
    assert torch.allclose(att[2, 0], torch.tensor(1.))
    assert (h.abs() < 1).all()  # h = tanh(.)


def test_padding_garbage_does_not_change_outputs():
    torch.manual_seed(0)
    m = AttBLSTM(in_channels=8, hidden_size=4, proj_channels=6).eval()
    feats, mask = _bag()
    h, att = m(feats, mask)
    garbage = feats.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 8) * 1e3
    garbage[0, 5] = float('nan')
    h2, att2 = m(garbage, mask)
    assert torch.allclose(h, h2, atol=1e-6) and torch.allclose(att, att2)
    # same as running every ROI alone without padding
    for i in range(3):
        n = int(mask[i].sum())
        hi, ai = m(feats[i:i + 1, :n], mask[i:i + 1, :n])
        assert torch.allclose(hi, h[i:i + 1], atol=1e-6)
        assert torch.allclose(ai, att[i:i + 1, :n], atol=1e-6)


def test_non_prefix_mask_equals_compacted_bag():
    torch.manual_seed(0)
    m = AttBLSTM(in_channels=4, hidden_size=3).eval()
    feats = torch.randn(1, 5, 4)
    mask = torch.tensor([[False, True, False, True, True]])
    h, att = m(feats, mask)
    h_c, att_c = m(feats[:, [1, 3, 4]], torch.ones(1, 3).bool())
    assert torch.allclose(h, h_c, atol=1e-6)
    assert torch.allclose(att[0, [1, 3, 4]], att_c[0], atol=1e-6)
    assert (att[0, [0, 2]] == 0).all()


def test_attention_formula_matches_hand_computation():
    torch.manual_seed(1)
    m = AttBLSTM(in_channels=3, hidden_size=2).eval()
    feats = torch.randn(1, 4, 3)
    mask = torch.ones(1, 4).bool()
    H, _ = m.lstm(feats)  # no padding: plain LSTM
    a = torch.softmax(torch.tanh(H[0]) @ m.w, dim=0)
    h_ref = torch.tanh(a @ H[0])
    h, att = m(feats, mask)
    assert torch.allclose(att[0], a, atol=1e-6)
    assert torch.allclose(h[0], h_ref, atol=1e-6)


def test_gradients_and_errors():
    m = AttBLSTM(in_channels=8, hidden_size=4)
    feats, mask = _bag()
    feats.requires_grad_(True)
    h, _ = m(feats, mask)
    h.sum().backward()
    assert m.w.grad is not None and m.w.grad.abs().sum() > 0
    assert (feats.grad[~mask] == 0).all()
    with pytest.raises(ValueError, match='no valid cell'):
        m(feats.detach(), torch.zeros(3, 6).bool())
    with pytest.raises(ValueError, match='Tensor\\[B, N, C\\]'):
        m(torch.randn(6, 8), mask)
