"""Cross attention between the global and the local branch of Shi et al.
(ISBI 2022).

The ROI representation of the global branch is the query, the cells' local
features the keys and values::

    Q = W_q h_ROI   K = W_k y   V = W_v y        (d_k = d_v = 1024)
    s = softmax(Q K^T / sqrt(d_k))               over the ROI's valid cells
    a = s V,        h~ = h_ROI + a

``s`` (the CA scores) says how much every cell contributes to the ROI
decision; the residual ``h~ = h_ROI + a`` needs ``d_v == dim(h_ROI)``.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> ca = MODELS.build(dict(type='ROICrossAttention', query_channels=1024,
    ...                        key_channels=768))
    >>> h_roi, y = torch.randn(2, 1024), torch.randn(2, 6, 768)
    >>> mask = torch.ones(2, 6).bool()
    >>> h_tilde, scores = ca(h_roi, y, mask)   # [2, 1024], [2, 6]
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch import Tensor

from .att_blstm import masked_softmax
from .base_cell_pooling import check_bag_inputs


@MODELS.register_module()
class ROICrossAttention(nn.Module):
    """Single-query cross attention from the ROI to its cells.

    Args:
        query_channels (int): Width of ``h_ROI``. Defaults to 1024.
        key_channels (int): Width ``D`` of the cells' ``y``. Defaults to 768.
        d_k (int): Query / key width. Defaults to 1024 (paper).
        d_v (int, optional): Value width; must equal ``query_channels`` for
            the residual. Defaults to ``query_channels``.
        qkv_bias (bool): Biases in ``W_q``, ``W_k``, ``W_v``. Defaults to
            True.

    Attributes:
        out_channels (int): ``query_channels``.
    """

    def __init__(self,
                 query_channels: int = 1024,
                 key_channels: int = 768,
                 d_k: int = 1024,
                 d_v: Optional[int] = None,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        d_v = query_channels if d_v is None else d_v
        if d_v != query_channels:
            raise ValueError(
                f'ROICrossAttention: d_v ({d_v}) must equal the width of '
                f'h_ROI (query_channels={query_channels}) for the residual '
                'h~ = h_ROI + a; set d_v to the global branch\'s '
                'out_channels (e.g. 2 * hidden_size of AttBLSTM)')
        self.query_channels = self.out_channels = int(query_channels)
        self.key_channels = int(key_channels)
        self.d_k, self.d_v = int(d_k), int(d_v)
        self.w_q = nn.Linear(self.query_channels, self.d_k, bias=qkv_bias)
        self.w_k = nn.Linear(self.key_channels, self.d_k, bias=qkv_bias)
        self.w_v = nn.Linear(self.key_channels, self.d_v, bias=qkv_bias)

    def forward(self, h_roi: Tensor, y: Tensor,
                mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Attend from every ROI to its valid cells.

        Args:
            h_roi (Tensor[B, query_channels]): Global ROI representation.
            y (Tensor[B, N, key_channels]): Local cell features (any values
                on padding).
            mask (Tensor[B, N]): bool, ``True`` for valid cells (>= 1 per
                ROI).

        Returns:
            tuple: ``h_tilde`` Tensor[B, query_channels] and ``scores``
            Tensor[B, N] (sum to 1 over valid cells, exactly 0 on padding).
        """
        check_bag_inputs(y, mask, name='y')
        if h_roi.shape != (y.shape[0], self.query_channels):
            raise ValueError(f'h_roi must be Tensor[{y.shape[0]}, '
                             f'{self.query_channels}]; got shape '
                             f'{tuple(h_roi.shape)}')
        if y.shape[-1] != self.key_channels:
            raise ValueError(f'y must have {self.key_channels} channels '
                             f'(key_channels); got {y.shape[-1]}')
        mask = mask.bool()
        y = y.masked_fill(~mask[..., None], 0.)  # garbage never enters
        q = self.w_q(h_roi)  # [B, d_k]
        k = self.w_k(y)  # [B, N, d_k]
        v = self.w_v(y)  # [B, N, d_v]
        logits = torch.einsum('bd,bnd->bn', q, k) / self.d_k**0.5
        scores = masked_softmax(logits, mask)  # softmax(QK^T / sqrt(d_k))
        a = torch.einsum('bn,bnd->bd', scores, v)
        return h_roi + a, scores  # h~ = h_ROI + a

    def extra_repr(self) -> str:
        return (f'query_channels={self.query_channels}, '
                f'key_channels={self.key_channels}, d_k={self.d_k}, '
                f'd_v={self.d_v}')


__all__ = ['ROICrossAttention']
