"""Bidirectional LSTM with peephole connections, Eq. (1) of Shi et al.
(ISBI 2022) after Zhou et al. (ACL 2016) and Graves (2013)::

    i_t = sigma(W_xi x_t + W_hi h_{t-1} + w_ci * c_{t-1} + b_i)
    f_t = sigma(W_xf x_t + W_hf h_{t-1} + w_cf * c_{t-1} + b_f)
    g_t = tanh (W_xc x_t + W_hc h_{t-1} + w_cc * c_{t-1} + b_c)
    c_t = i_t * g_t + f_t * c_{t-1}
    o_t = sigma(W_xo x_t + W_ho h_{t-1} + w_co * c_t + b_o)
    h_t = o_t * tanh(c_t)

The paper writes the peephole terms as matrices ``W_ci c_{t-1}``,
``W_cf c_{t-1}``, ``W_cc c_{t-1}``, ``W_co c_t`` (all four, as Zhou et al.);
in Graves (2013), where these equations come from, the cell-to-gate
matrices are diagonal, so here they are vectors ``w_ci, w_cf, w_cc, w_co``
(element-wise): our reading of the matrices, all four terms kept.
``torch.nn.LSTM`` has no peepholes; with them set to 0 this module equals it
(same gate order i, f, g, o; tested).

The recurrence is a loop over the cell positions (sequential by nature),
vectorised over the ROIs of the batch and the two directions. Valid cells
are moved to the front (order kept); the backward direction reads each ROI's
valid cells in reverse; padding never enters the recurrence.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .att_blstm import compact_valid_first


def reverse_valid(lengths: Tensor, n: int) -> Tensor:
    """Index that reverses the first ``lengths[b]`` entries of every row.

    Args:
        lengths (Tensor[B]): Valid entries per row (at the front).
        n (int): Row length.

    Returns:
        Tensor[B, n] long: ``rev[b, t] = L_b - 1 - t`` for ``t < L_b``, else
        ``t`` (an involution: applying it twice is the identity).
    """
    t = torch.arange(n, device=lengths.device)[None]
    return torch.where(t < lengths[:, None], lengths[:, None] - 1 - t,
                       t.expand(lengths.shape[0], -1))


class PeepholeBiLSTM(nn.Module):
    """One-layer bidirectional peephole LSTM over masked bags.

    Args:
        input_size (int): Input width ``C``.
        hidden_size (int): Hidden width ``h`` per direction.

    Attributes:
        w_x (nn.Parameter): ``[2, C, 4h]`` input weights (gates i, f, g, o).
        w_h (nn.Parameter): ``[2, h, 4h]`` recurrent weights.
        bias (nn.Parameter): ``[2, 4h]``.
        peephole (nn.Parameter): ``[2, 4, h]``: ``w_ci, w_cf, w_cc,
            w_co``.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        h = self.hidden_size
        self.w_x = nn.Parameter(torch.empty(2, self.input_size, 4 * h))
        self.w_h = nn.Parameter(torch.empty(2, h, 4 * h))
        self.bias = nn.Parameter(torch.empty(2, 4 * h))
        self.peephole = nn.Parameter(torch.empty(2, 4, h))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``U(-1/sqrt(h), 1/sqrt(h))`` for every weight, as ``nn.LSTM``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, feats: Tensor, mask: Tensor) -> Tensor:
        """Run both directions over the valid cells of every ROI.

        Args:
            feats (Tensor[B, N, C]): Padded inputs (any values on padding).
            mask (Tensor[B, N]): bool, ``True`` for valid cells.

        Returns:
            Tensor[B, N, 2h]: ``[h_fwd, h_bwd]`` at the valid positions
            (original order), 0 on padding.
        """
        b, n = mask.shape
        h = self.hidden_size
        order, lengths = compact_valid_first(mask)
        x = feats.gather(1, order[..., None].expand(-1, -1, feats.shape[-1]))
        front = torch.arange(n, device=mask.device)[None] < lengths[:, None]
        x = x.masked_fill(~front[..., None], 0.)
        rev = reverse_valid(lengths, n)
        x_rev = x.gather(1, rev[..., None].expand(-1, -1, x.shape[-1]))
        # input projections of both directions at once: [2, B, N, 4h]
        gx = torch.einsum('dbnc,dck->dbnk', torch.stack([x, x_rev]),
                          self.w_x) + self.bias[:, None, None]
        p_i, p_f, p_c, p_o = self.peephole[:, :, None].unbind(1)  # [2,1,h]
        h_t = feats.new_zeros(2, b, h)
        c_t = feats.new_zeros(2, b, h)
        outs = []
        steps = int(lengths.max()) if b else 0
        for t in range(steps):
            g = gx[:, :, t] + torch.einsum('dbh,dhk->dbk', h_t, self.w_h)
            gi, gf, gg, go = g.split(h, dim=-1)
            i = torch.sigmoid(gi + p_i * c_t)  # Eq. (1)
            f = torch.sigmoid(gf + p_f * c_t)
            c_new = i * torch.tanh(gg + p_c * c_t) + f * c_t
            o = torch.sigmoid(go + p_o * c_new)
            h_new = o * torch.tanh(c_new)
            valid = front[:, t][None, :, None]  # [1, B, 1]
            c_t = torch.where(valid, c_new, c_t)
            h_t = torch.where(valid, h_new, h_t)
            outs.append(h_new * valid.to(h_new.dtype))
        out = feats.new_zeros(2, b, n, h)
        if steps:
            out[:, :, :steps] = torch.stack(outs, dim=2)
        fwd = out[0]
        bwd = out[1].gather(1, rev[..., None].expand(-1, -1, h))  # un-reverse
        packed = torch.cat([fwd, bwd], dim=-1)  # valid-first order
        outputs = torch.zeros_like(packed).scatter(
            1, order[..., None].expand(-1, -1, 2 * h), packed)
        return outputs * mask[..., None].to(outputs.dtype)

    def extra_repr(self) -> str:
        return f'{self.input_size}, {self.hidden_size}, bidirectional'


def copy_from_lstm(peephole: PeepholeBiLSTM,
                   lstm: nn.LSTM) -> Tuple[PeepholeBiLSTM, nn.LSTM]:
    """Copy a one-layer bidirectional ``nn.LSTM``'s weights into
    ``peephole`` and zero its peepholes (for the equivalence test and for
    starting from a cuDNN-trained model)."""
    with torch.no_grad():
        for d, sfx in enumerate(('', '_reverse')):
            peephole.w_x[d].copy_(getattr(lstm, f'weight_ih_l0{sfx}').t())
            peephole.w_h[d].copy_(getattr(lstm, f'weight_hh_l0{sfx}').t())
            peephole.bias[d].copy_(getattr(lstm, f'bias_ih_l0{sfx}') +
                                   getattr(lstm, f'bias_hh_l0{sfx}'))
        peephole.peephole.zero_()
    return peephole, lstm


__all__ = ['PeepholeBiLSTM', 'reverse_valid', 'copy_from_lstm']
