"""Gated attention MIL pooling (Ilse et al., "Attention-based deep multiple
instance learning", ICML 2018; the single-branch form used by CLAM-SB, Lu et
al., Nat. Biomed. Eng. 2021): the attention-MIL baseline of Shi et al.
(ISBI 2022, Table 1).

Every cell feature is first embedded, ``h_k = ReLU(W_1 x_k)``; the gated
attention is::

    a_k = softmax_k( w^T (tanh(V h_k) * sigmoid(U h_k)) )     Ilse Eq. (9)
    h   = sum_k a_k h_k                                         Ilse Eq. (7)

(``gated=False`` drops the sigmoid gate, Ilse Eq. (8)). The softmax runs over
the ROI's valid cells only: padding gets exactly 0 attention.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> m = MODELS.build(dict(type='GatedAttentionMIL', in_channels=2048))
    >>> h, att = m(torch.randn(2, 6, 2048), torch.ones(2, 6).bool())
    >>> h.shape, att.shape      # [2, 512], [2, 6]
"""
from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch import Tensor

from .att_blstm import masked_softmax
from .base_cell_pooling import BaseCellPooling


@MODELS.register_module()
class GatedAttentionMIL(BaseCellPooling):
    """CLAM-SB-style gated attention pooling over the cells of an ROI.

    Args:
        in_channels (int): Cell feature width ``C``. Defaults to 2048.
        hidden_channels (int): Width ``L`` of the cell embedding ``h_k`` (and
            of the output). Defaults to 512 (CLAM's 'small' size).
        attn_channels (int): Width of the attention network ``V`` / ``U``.
            Defaults to 256.
        gated (bool): Use the sigmoid gate. Defaults to True.
        dropout (float): Dropout on ``h_k`` and inside the attention net.

    Attributes:
        out_channels (int): ``hidden_channels``.
        has_attention (bool): True.
    """

    has_attention = True

    def __init__(self,
                 in_channels: int = 2048,
                 hidden_channels: int = 512,
                 attn_channels: int = 256,
                 gated: bool = True,
                 dropout: float = 0.) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(hidden_channels)
        self.gated = bool(gated)
        self.embed = nn.Sequential(
            nn.Linear(self.in_channels, self.out_channels),
            nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.attn_v = nn.Sequential(
            nn.Linear(self.out_channels, attn_channels), nn.Tanh(),
            nn.Dropout(dropout))
        self.attn_u = nn.Sequential(
            nn.Linear(self.out_channels, attn_channels), nn.Sigmoid(),
            nn.Dropout(dropout)) if self.gated else None
        self.attn_w = nn.Linear(attn_channels, 1)

    def pool(self, feats: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """``h`` Tensor[B, hidden_channels] and ``attention`` Tensor[B, N]
        (sums to 1 over valid cells, 0 on padding)."""
        # padding may hold garbage (inf / nan): zero it before any layer
        feats = feats.masked_fill(~mask[..., None], 0.)
        h = self.embed(feats)  # [B, N, L]
        gate = self.attn_v(h)
        if self.attn_u is not None:
            gate = gate * self.attn_u(h)  # Ilse et al. 2018, Eq. (9)
        attention = masked_softmax(self.attn_w(gate).squeeze(-1), mask)
        pooled = torch.einsum('bn,bnl->bl', attention, h)  # Eq. (7)
        return pooled, attention

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'out_channels={self.out_channels}, gated={self.gated}')


__all__ = ['GatedAttentionMIL']
