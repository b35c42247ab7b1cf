"""Att-BLSTM global branch of Shi et al., "Global-local attention network for
weakly supervised cervical cytology ROI analysis" (ISBI 2022).

The pooled features of the cells of a region of interest (ROI) form a
sequence that a bidirectional LSTM reads; an attention vector ``w`` scores
every cell and the attention-weighted sum of the hidden states is the ROI
representation ``h_ROI`` (attention-based BLSTM of Zhou et al., "Attention-
based bidirectional long short-term memory networks for relation
classification", ACL 2016)::

    M = tanh(H)                 H = [h_1 .. h_N] (BiLSTM states, 2*hidden)
    a = softmax(w^T M)          over the ROI's valid cells only
    h_ROI = tanh(H a^T)

Cells have no natural order inside an ROI: the sequence order is the order
the dataset gives (the annotation order of the cell boxes). Padding cells
never enter the recurrence (valid cells are packed with
``pack_padded_sequence``) and get exactly 0 attention, so the values in
padded slots cannot change any output.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> m = MODELS.build(dict(type='AttBLSTM', in_channels=2048))
    >>> feats = torch.randn(2, 5, 2048)
    >>> mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    >>> h_roi, att = m(feats, mask)   # [2, 1024], [2, 5]; att[0, 3:] == 0
"""
from typing import Optional, Tuple, Type

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base_cell_pooling import BaseCellPooling, check_bag_inputs


def masked_softmax(logits: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the valid entries only; masked entries are exactly 0.

    Args:
        logits (Tensor[..., N]): Scores.
        mask (Tensor[..., N]): ``True`` for valid entries (same shape).
        dim (int): Dimension to normalise over.

    Returns:
        Tensor[..., N]: Non-negative weights summing to 1 over the valid
        entries of every row (rows without a valid entry are all 0).
    """
    logits = logits.masked_fill(~mask, float('-inf'))
    # rows without any valid entry would give NaN: keep them finite
    any_valid = mask.any(dim=dim, keepdim=True)
    logits = torch.where(any_valid, logits, torch.zeros_like(logits))
    weights = torch.softmax(logits, dim=dim)
    return weights.masked_fill(~mask, 0.)


def compact_valid_first(mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Permutation moving the valid cells of every row to the front.

    The relative order of the valid cells (and of the padding) is kept.

    Args:
        mask (Tensor[B, N]): ``True`` for valid cells (any positions).

    Returns:
        tuple: ``order`` Tensor[B, N] long (``x.gather(1, order)`` puts the
        valid cells first) and ``lengths`` Tensor[B] long (valid cells per
        row).
    """
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    return order, mask.sum(dim=1)


def run_packed_rnn(rnn: nn.RNNBase, feats: Tensor,
                   mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Run a ``batch_first`` RNN on the valid cells of every row only.

    Valid cells are moved to the front (order kept), packed, run and the
    outputs scattered back to the original positions, so padding never
    enters the recurrence, whatever its position and values.

    Args:
        rnn (nn.RNNBase): ``nn.LSTM`` / ``nn.GRU`` with ``batch_first=True``.
        feats (Tensor[B, N, C]): Padded cell features.
        mask (Tensor[B, N]): ``True`` for valid cells (>= 1 per row).

    Returns:
        tuple: ``outputs`` Tensor[B, N, D] (0 on padding; ``D`` is
        ``hidden * num_directions``) and ``h_n`` Tensor[L * dirs, B, hidden]
        (the final hidden states, as returned by the RNN).
    """
    b, n = mask.shape
    order, lengths = compact_valid_first(mask)
    packed_in = feats.gather(
        1, order[..., None].expand(-1, -1, feats.shape[-1]))
    # padding (now at the back) may hold garbage: never let it be read
    valid_first = torch.arange(n, device=mask.device)[None] < lengths[:, None]
    packed_in = packed_in.masked_fill(~valid_first[..., None], 0.)
    packed = pack_padded_sequence(
        packed_in, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)
    if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
        h_n = h_n[0]
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=n)
    # scatter back: position order[b, j] receives out[b, j]
    outputs = torch.zeros_like(out).scatter(
        1, order[..., None].expand(-1, -1, out.shape[-1]), out)
    return outputs * mask[..., None].to(outputs.dtype), h_n


def make_input_proj(in_channels: int, proj_channels: Optional[int],
                    dropout: float) -> Tuple[nn.Module, int]:
    """Optional ``Linear -> ReLU -> Dropout`` input projection.

    Returns:
        tuple: the module (``nn.Identity`` when ``proj_channels`` is None)
        and its output width.
    """
    if proj_channels is None:
        return nn.Identity(), in_channels
    return nn.Sequential(
        nn.Linear(in_channels, proj_channels), nn.ReLU(inplace=True),
        nn.Dropout(dropout)), proj_channels


def make_rnn(rnn_type: Type[nn.RNNBase], in_channels: int, hidden_size: int,
             num_layers: int, bidirectional: bool,
             dropout: float) -> nn.RNNBase:
    """A ``batch_first`` ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` for
    :func:`run_packed_rnn`, with ``dropout`` between stacked layers only
    (none for one layer, where torch would warn).

    Returns:
        nn.RNNBase: ``rnn_type(in_channels, hidden_size, ...)``; its outputs
        have ``hidden_size * (2 if bidirectional else 1)`` channels.
    """
    return rnn_type(
        in_channels,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if num_layers > 1 else 0.)


@MODELS.register_module()
class AttBLSTM(BaseCellPooling):
    """Attention-based bidirectional LSTM over the cells of an ROI.

    Args:
        in_channels (int): Cell feature width ``C``. Defaults to 2048
            (ResNet-50 pooled features).
        hidden_size (int): LSTM hidden size per direction; ``h_ROI`` has
            ``2 * hidden_size`` channels. Defaults to 512 (1024-d ``h_ROI``
            as in the paper).
        proj_channels (int, optional): Width of an optional
            ``Linear -> ReLU`` projection applied to every cell first
            (e.g. 2048 -> 512). Defaults to None (no projection).
        num_layers (int): Stacked LSTM layers. Defaults to 1.
        dropout (float): Dropout after the projection and between stacked
            LSTM layers. Defaults to 0.
        peephole (bool): The LSTM of the paper's Eq. (1), with peephole
            connections (:class:`PeepholeBiLSTM`, one layer, a loop over
            the cells); False: ``torch.nn.LSTM`` (cuDNN, no peepholes).
            Defaults to False; the paper configs set True.

    Attributes:
        out_channels (int): ``2 * hidden_size``.
        has_attention (bool): True (returns attention over cells).
    """

    has_attention = True

    def __init__(self,
                 in_channels: int = 2048,
                 hidden_size: int = 512,
                 proj_channels: Optional[int] = None,
                 num_layers: int = 1,
                 dropout: float = 0.,
                 peephole: bool = False) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.hidden_size = int(hidden_size)
        self.proj, rnn_in = make_input_proj(self.in_channels, proj_channels,
                                            dropout)
        self.peephole = bool(peephole)
        if self.peephole:
            if num_layers != 1:
                raise ValueError(
                    'AttBLSTM(peephole=True) has one layer (the paper\'s '
                    f'Eq. 1); got num_layers={num_layers}')
            from .peephole_lstm import PeepholeBiLSTM
            self.lstm = PeepholeBiLSTM(rnn_in, self.hidden_size)
        else:
            self.lstm = make_rnn(nn.LSTM, rnn_in, self.hidden_size,
                                 num_layers, True, dropout)
        self.out_channels = 2 * self.hidden_size
        # attention vector w (Zhou et al. 2016, Eq. 10)
        self.w = nn.Parameter(
            torch.randn(self.out_channels) / self.out_channels**0.5)

    def pool(self, feats: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """``h_roi`` Tensor[B, 2*hidden] and ``attention`` Tensor[B, N]
        (sums to 1 over the valid cells, exactly 0 on padding)."""
        x = self.proj(feats)
        if self.peephole:
            H = self.lstm(x, mask)  # Eq. (1) with peepholes, [B, N, 2h]
        else:
            H, _ = run_packed_rnn(self.lstm, x, mask)  # [B, N, 2h]
        M = torch.tanh(H)  # Zhou et al. 2016, Eq. (9)
        attention = masked_softmax(M @ self.w, mask)  # Eq. (10)
        r = torch.einsum('bn,bnd->bd', attention, H)  # Eq. (11): H a^T
        h_roi = torch.tanh(r)  # Eq. (12)
        return h_roi, attention

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'hidden_size={self.hidden_size}, peephole={self.peephole}')


__all__ = [
    'AttBLSTM', 'masked_softmax', 'compact_valid_first', 'run_packed_rnn',
    'check_bag_inputs', 'make_input_proj', 'make_rnn'
]
