"""Plain recurrent ROI aggregators (LSTM / GRU baselines of Shi et al.,
ISBI 2022, Table 1): the cells of an ROI are read as a sequence and the ROI
representation is the last hidden state (or the mean of the hidden states
over the valid cells). There is no attention over cells (``attention`` is
None), so these baselines cannot drive cell-level pseudo labels.

As for :class:`~cervdet.models.layers.AttBLSTM`, the sequence order is the
dataset's order of the cells and padding never enters the recurrence.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> m = MODELS.build(dict(type='RNNAggregator', cell='gru',
    ...                       in_channels=2048, hidden_size=512))
    >>> h, att = m(torch.randn(2, 4, 2048), torch.ones(2, 4).bool())
    >>> h.shape, att            # (torch.Size([2, 512]), None)
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch import Tensor

from .att_blstm import make_input_proj, make_rnn, run_packed_rnn
from .base_cell_pooling import BaseCellPooling

CELLS = {'lstm': nn.LSTM, 'gru': nn.GRU, 'rnn': nn.RNN}
POOLINGS = ('last', 'mean')


@MODELS.register_module()
class RNNAggregator(BaseCellPooling):
    """LSTM / GRU pooling of a bag of cells, without attention.

    Args:
        cell (str): ``'lstm'``, ``'gru'`` or ``'rnn'`` (Elman, tanh; the
            paper's Table 1 RNN). Defaults to ``'lstm'``.
        in_channels (int): Cell feature width ``C``. Defaults to 2048.
        hidden_size (int): Hidden size per direction. Defaults to 512.
        bidirectional (bool): Read the sequence both ways (the output is the
            concatenation of both directions). Defaults to False.
        pooling (str): ``'last'`` (final hidden state of every direction of
            the last layer: after the last valid cell forwards, after the
            first valid cell backwards) or ``'mean'`` (mean of the outputs
            over the valid cells). Defaults to ``'last'``.
        proj_channels (int, optional): Optional ``Linear -> ReLU`` input
            projection width. Defaults to None.
        num_layers (int): Stacked layers. Defaults to 1.
        dropout (float): Dropout after the projection / between layers.

    Attributes:
        out_channels (int): ``hidden_size * (2 if bidirectional else 1)``.
        has_attention (bool): False (``attention`` is always None).
    """

    has_attention = False

    def __init__(self,
                 cell: str = 'lstm',
                 in_channels: int = 2048,
                 hidden_size: int = 512,
                 bidirectional: bool = False,
                 pooling: str = 'last',
                 proj_channels: Optional[int] = None,
                 num_layers: int = 1,
                 dropout: float = 0.) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f'cell must be one of {tuple(CELLS)}; got '
                             f'{cell!r}')
        if pooling not in POOLINGS:
            raise ValueError(f'pooling must be one of {POOLINGS}; got '
                             f'{pooling!r}')
        self.cell = cell
        self.pooling = pooling
        self.in_channels = int(in_channels)
        self.hidden_size = int(hidden_size)
        self.num_directions = 2 if bidirectional else 1
        self.proj, rnn_in = make_input_proj(self.in_channels, proj_channels,
                                            dropout)
        self.rnn = make_rnn(CELLS[cell], rnn_in, self.hidden_size,
                            num_layers, bidirectional, dropout)
        self.out_channels = self.hidden_size * self.num_directions

    def pool(self, feats: Tensor, mask: Tensor) -> Tuple[Tensor, None]:
        """``h`` Tensor[B, out_channels] and None."""
        outputs, h_n = run_packed_rnn(self.rnn, self.proj(feats), mask)
        if self.pooling == 'mean':
            n = mask.sum(dim=1, keepdim=True).to(outputs.dtype)
            return outputs.sum(dim=1) / n, None
        # h_n: [layers * dirs, B, hidden]; the last layer's directions
        last = h_n[-self.num_directions:]  # [dirs, B, hidden]
        return torch.cat(list(last), dim=-1), None

    def extra_repr(self) -> str:
        return (f'cell={self.cell!r}, in_channels={self.in_channels}, '
                f'hidden_size={self.hidden_size}, '
                f'num_directions={self.num_directions}, '
                f'pooling={self.pooling!r}')


__all__ = ['RNNAggregator']
