"""Learned slide call: gated attention MIL (Ilse et al., "Attention-based
deep multiple instance learning", ICML 2018) over the top-k cells of a
slide.

Every cell ``k`` enters with its feature ``x_k`` (the detector's cell
feature) and, with ``use_scores=True``, its detector abnormality score
``s_k`` as one extra channel: ``z_k = [x_k, s_k]``. The gated attention of
:class:`~cervdet.models.layers.GatedAttentionMIL` pools the bag::

    h_k = ReLU(W_1 z_k)
    a_k = softmax_k( w^T (tanh(V h_k) * sigmoid(U h_k)) )   Ilse Eq. (9)
    h   = sum_k a_k h_k                                      Ilse Eq. (7)

and a linear layer gives the slide logit (``num_classes=1``, binary
negative / positive) or the grade logits (``num_classes=G``).

A slide without any valid cell (nothing detected: a clean negative) pools
to ``h = 0``, so its logits are the head's bias (learned, finite, never
NaN) and its attention is all 0.

Usage::

    >>> agg = MODELS.build(dict(type='AttentionMILAggregator',
    ...                         in_channels=256, hidden=128))
    >>> logit, att = agg(scores, mask, feats, return_attention=True)
    >>> prob = agg.predict_proba(scores, mask, feats)   # sigmoid, Tensor[B]
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from torch import Tensor

from ..layers.gated_attention_mil import GatedAttentionMIL
from .base_slide_aggregator import BaseSlideAggregator
from .topk_cells import topk_cells


@MODELS.register_module()
class AttentionMILAggregator(BaseSlideAggregator):
    """Gated attention MIL over (the top-k) cells of a slide.

    Args:
        in_channels (int): Cell feature width ``C`` (0 with
            ``use_scores=True``: the detector score is the only input).
        hidden (int): Width of the cell embedding ``h_k``. Defaults to 128.
        num_classes (int): 1 for a binary slide logit, ``G >= 2`` for grade
            logits. Defaults to 1.
        use_scores (bool): Append the cell score as an input channel.
            Defaults to True.
        dropout (float): Dropout on the embedding and in the attention net.
        attn_channels (int, optional): Width of the attention net; defaults
            to ``hidden // 2`` (at least 1).
        top_k (int, optional): Keep only the ``top_k`` highest-scoring cells
            of every bag before pooling (the data preprocessor usually did
            it already). None keeps every valid cell.

    Attributes:
        is_learned (bool): True (:meth:`forward` gives logits;
            :meth:`predict_proba` applies sigmoid, or softmax over grades).
    """

    is_learned = True

    def __init__(self,
                 in_channels: int,
                 hidden: int = 128,
                 num_classes: int = 1,
                 use_scores: bool = True,
                 dropout: float = 0.,
                 attn_channels: Optional[int] = None,
                 top_k: Optional[int] = None) -> None:
        super().__init__()
        if in_channels < 0 or (in_channels == 0 and not use_scores):
            raise ValueError('AttentionMILAggregator needs cell features '
                             '(in_channels > 0) or use_scores=True; got '
                             f'in_channels={in_channels}, '
                             f'use_scores={use_scores}')
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1; got {num_classes}')
        if top_k is not None and top_k < 1:
            raise ValueError(f'top_k must be >= 1 or None; got {top_k}')
        self.in_channels = int(in_channels)
        self.use_scores = bool(use_scores)
        self.num_classes = int(num_classes)
        self.top_k = top_k
        attn = attn_channels or max(hidden // 2, 1)
        self.mil = GatedAttentionMIL(
            in_channels=self.in_channels + int(self.use_scores),
            hidden_channels=hidden, attn_channels=attn, gated=True,
            dropout=dropout)
        self.head = nn.Linear(hidden, self.num_classes)

    def _inputs(self, scores: Tensor, feats: Optional[Tensor]) -> Tensor:
        """Cell inputs ``z`` Tensor[B, K, C (+1)]."""
        b, k = scores.shape
        if k == 0:  # no cell in the batch: the feature width is moot
            feats = scores.new_zeros((b, 0, self.in_channels),
                                     dtype=torch.float)
        if self.in_channels:
            if feats is None:
                raise ValueError(
                    f'AttentionMILAggregator(in_channels={self.in_channels}) '
                    'needs cell feats Tensor[B, K, C]: the bags have none '
                    '(cells_topk.npz without "feats"); set in_channels=0 to '
                    'use the scores only')
            if feats.shape[2] != self.in_channels:
                raise ValueError(
                    f'cell feats have C={feats.shape[2]} channels but the '
                    f'aggregator has in_channels={self.in_channels}: set '
                    f'model.aggregator.in_channels={feats.shape[2]} in the '
                    'config')
            z = feats.float()
        else:
            z = scores.new_zeros((b, k, 0), dtype=torch.float)
        if self.use_scores:
            z = torch.cat([z, scores.float()[..., None]], dim=2)
        return z

    def aggregate(self, scores: Tensor, mask: Tensor, feats: Optional[Tensor],
                  return_attention: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Slide logits Tensor[B] (``num_classes=1``) or Tensor[B, G] and
        the attention Tensor[B, K] (sums to 1 over the pooled valid cells, 0
        on padding, on cells outside the top-k and on empty bags)."""
        b, k = scores.shape
        z = self._inputs(scores, feats)
        sel = None
        if self.top_k is not None and k > self.top_k:
            _, sel, valid = topk_cells(scores, self.top_k, mask)
            z = z.gather(1, sel[..., None].expand(-1, -1, z.shape[2]))
            mask_in = valid
        else:
            mask_in = mask
        empty = ~mask_in.any(dim=1)
        if mask_in.shape[1] == 0:  # no cell in the whole batch
            z = z.new_zeros((b, 1, z.shape[2]))
            mask_in = mask_in.new_zeros((b, 1))
        # GatedAttentionMIL needs >= 1 valid cell per bag: give empty bags a
        # dummy cell, then zero their pooled feature and attention
        safe = mask_in.clone()
        safe[:, 0] |= empty
        z = z.masked_fill(~mask_in[..., None], 0.)
        pooled, att = self.mil(z, safe)
        keep = (~empty).to(pooled.dtype)
        pooled = pooled * keep[:, None]
        att = att * keep[:, None] * mask_in.to(att.dtype)
        logits = self.head(pooled)
        if self.num_classes == 1:
            logits = logits.squeeze(1)
        if not return_attention:
            return logits, None
        if sel is not None:
            full = att.new_zeros((b, k))
            att = full.scatter(1, sel, att)
        elif att.shape[1] != k:  # the dummy column of an all-empty batch
            att = att[:, :k]
        return logits, att

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, use_scores='
                f'{self.use_scores}, num_classes={self.num_classes}, '
                f'top_k={self.top_k}')


__all__ = ['AttentionMILAggregator']
