"""Slide score = mean of the ``k`` highest cell scores (more robust to one
spurious detection than the maximum)."""
from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_slide_aggregator import BaseSlideAggregator
from .topk_cells import topk_cells


def topk_mean(scores: Tensor, mask: Tensor, k: int = 10) -> Tensor:
    """Mean of the ``k`` highest valid scores of every bag.

    Args:
        scores (Tensor[B, K]): Cell scores (any order).
        mask (Tensor[B, K]): bool, True for valid cells.
        k (int): Cells averaged; a bag with ``n < k`` valid cells averages
            its ``n`` cells.

    Returns:
        Tensor[B]: The means (0 for bags without valid cells).
    """
    if scores.shape[1] == 0:
        return scores.new_zeros(scores.shape[0])
    values, _, valid = topk_cells(scores, k, mask)
    n = valid.sum(dim=1)
    return values.sum(dim=1) / n.clamp(min=1).to(values.dtype)


@MODELS.register_module()
class TopKMeanAggregator(BaseSlideAggregator):
    """``s = mean of the k highest valid cell scores`` (fewer valid cells:
    their mean; no valid cell: 0).

    Args:
        k (int): Number of cells averaged. Defaults to 10.

    Attributes:
        is_learned (bool): False (:meth:`predict_proba` is the identity).
        num_classes (int): 1.
    """

    is_learned = False
    num_classes = 1

    def __init__(self, k: int = 10) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f'TopKMeanAggregator: k must be >= 1; got {k}')
        self.k = int(k)

    def aggregate(self, scores: Tensor, mask: Tensor, feats: Optional[Tensor],
                  return_attention: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Top-k means Tensor[B] and, with ``return_attention``, the
        averaging weights Tensor[B, K] (``1/n`` on the ``n <= k`` averaged
        cells, 0 elsewhere); ``feats`` are unused."""
        out = topk_mean(scores, mask, self.k)
        if not return_attention:
            return out, None
        att = torch.zeros_like(scores, dtype=torch.float)
        if scores.shape[1]:
            _, index, valid = topk_cells(scores, self.k, mask)
            w = valid.float() / valid.sum(dim=1, keepdim=True).clamp(min=1)
            att.scatter_(1, index, w)
        return out, att

    def extra_repr(self) -> str:
        return f'k={self.k}'


__all__ = ['TopKMeanAggregator', 'topk_mean']
