"""Slide score = the highest cell abnormality score (the usual detector-based
screening rule: a slide is as suspicious as its worst cell)."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_slide_aggregator import BaseSlideAggregator
from .topk_cells import check_slide_bag


def masked_max(scores: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Maximum over the valid cells of every bag.

    Args:
        scores (Tensor[B, K]): Cell scores (any order).
        mask (Tensor[B, K]): bool, True for valid cells.

    Returns:
        tuple: ``max`` Tensor[B] (0 for bags without valid cells) and
        ``argmax`` Tensor[B] long (0 for such bags).
    """
    check_slide_bag(scores, mask)
    mask = mask.bool()
    if scores.shape[1] == 0:
        zeros = scores.new_zeros(scores.shape[0])
        return zeros, zeros.long()
    filled = scores.masked_fill(~mask, float('-inf'))
    best, arg = filled.max(dim=1)
    empty = ~mask.any(dim=1)
    best = torch.where(empty, torch.zeros_like(best), best)
    return best, arg.masked_fill(empty, 0)


@MODELS.register_module()
class MaxScoreAggregator(BaseSlideAggregator):
    """``s = max_k s_k`` over the valid cells; 0 for a slide without cells.

    Not learned: the output is already a score in the range of the cell
    scores (a probability for detector scores), so :meth:`predict_proba` is
    the identity (:class:`BaseSlideAggregator`). Differentiable w.r.t. the
    winning cell's score.

    Attributes:
        is_learned (bool): False.
        num_classes (int): 1 (binary slide score).
    """

    is_learned = False
    num_classes = 1

    def aggregate(self, scores: Tensor, mask: Tensor, feats: Optional[Tensor],
                  return_attention: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """``max`` Tensor[B] and, with ``return_attention``, the one-hot
        weight Tensor[B, K] of the winning cell (all 0 for empty bags);
        ``feats`` are unused."""
        best, arg = masked_max(scores, mask)
        if not return_attention:
            return best, None
        att = torch.zeros_like(scores, dtype=torch.float)
        if scores.shape[1]:
            att.scatter_(1, arg[:, None], 1.)
            att = att * mask.any(dim=1, keepdim=True).float()
        return best, att


__all__ = ['MaxScoreAggregator', 'masked_max']
