"""Tests of the peephole BiLSTM of Eq. (1) (Shi et al., ISBI 2022)."""
import math

import pytest
import torch
import torch.nn as nn

from cervdet.models.layers.att_blstm import AttBLSTM, run_packed_rnn
from cervdet.models.layers.peephole_lstm import (
    PeepholeBiLSTM,
    copy_from_lstm,
    reverse_valid,
)


def _sig(v):
    return 1 / (1 + math.exp(-v))


def test_reverse_valid():
    rev = reverse_valid(torch.tensor([3, 1, 0]), 4)
    assert rev.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [0, 1, 2, 3]]


def test_zero_peepholes_equal_torch_lstm_with_padding_anywhere():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    ours, _ = copy_from_lstm(PeepholeBiLSTM(5, 4), lstm)
    feats = torch.randn(3, 6, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 1, 0],
                         [1, 0, 0, 0, 0, 0]]).bool()
    ref, _ = run_packed_rnn(lstm, feats, mask)
    out = ours(feats, mask)
    assert torch.allclose(out, ref, atol=1e-5)
    # padding values never matter
    garbage = feats.masked_fill(~mask[..., None], 1e3)
    assert torch.allclose(ours(garbage, mask), out, atol=1e-6)


def test_peephole_step_by_hand():
    """Hidden size 1, two cells, forward direction against Eq. (1) by hand
    (all four peephole terms non-zero)."""
    m = PeepholeBiLSTM(1, 1)
    with torch.no_grad():
        m.w_x.copy_(torch.tensor([[[.5, -.3, .8, .2]]] * 2))  # i f g o
        m.w_h.copy_(torch.tensor([[[.1, .2, -.4, .3]]] * 2))
        m.bias.copy_(torch.tensor([[.05, .1, -.05, .02]] * 2))
        m.peephole.copy_(torch.tensor([[[.7], [-.6], [.4], [.9]]] * 2))
    xs = [1.0, -2.0]
    h = c = 0.
    wx, wh, b = [.5, -.3, .8, .2], [.1, .2, -.4, .3], [.05, .1, -.05, .02]
    pi, pf, pc, po = .7, -.6, .4, .9
    hs = []
    for x in xs:
        i = _sig(wx[0] * x + wh[0] * h + pi * c + b[0])
        f = _sig(wx[1] * x + wh[1] * h + pf * c + b[1])
        g = math.tanh(wx[2] * x + wh[2] * h + pc * c + b[2])
        c = i * g + f * c
        o = _sig(wx[3] * x + wh[3] * h + po * c + b[3])
        h = o * math.tanh(c)
        hs.append(h)
    out = m(torch.tensor([[[xs[0]], [xs[1]]]]), torch.ones(1, 2).bool())
    assert out[0, :, 0].tolist() == pytest.approx(hs, rel=1e-5)
    # backward direction reads cell 2 first: its state at cell 2 is one step
    h1 = out[0, 1, 1].item()
    c = _sig(wx[0] * xs[1] + b[0]) * math.tanh(wx[2] * xs[1] + b[2])
    o = _sig(wx[3] * xs[1] + b[3] + po * c)
    assert h1 == pytest.approx(o * math.tanh(c), rel=1e-5)


def test_att_blstm_peephole_option():
    torch.manual_seed(0)
    m = AttBLSTM(in_channels=6, hidden_size=4, peephole=True)
    feats, mask = torch.randn(2, 5, 6), torch.ones(2, 5).bool()
    mask[1, 3:] = False
    h_roi, att = m(feats, mask)
    assert h_roi.shape == (2, 8) and (att[1, 3:] == 0).all()
    h_roi.sum().backward()
    assert m.lstm.peephole.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='one layer'):
        AttBLSTM(in_channels=6, hidden_size=4, peephole=True, num_layers=2)
