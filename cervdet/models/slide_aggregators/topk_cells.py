"""Selection of the top-k cells of padded slide bags (pure functions shared
by the slide aggregators, :class:`SlideMILClassifier`'s data preprocessor and
the slide tools).

Cells of a bag need not be sorted; padding is marked by ``mask``.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor


def check_slide_bag(scores: Tensor, mask: Tensor,
                    feats: Optional[Tensor] = None) -> None:
    """Raise a clear ``ValueError`` for malformed slide bags.

    Args:
        scores (Tensor[B, K]): Cell abnormality scores.
        mask (Tensor[B, K]): bool, True for valid cells (a row may be all
            False: a slide without any cell).
        feats (Tensor[B, K, C], optional): Cell features.
    """
    if scores.dim() != 2:
        raise ValueError('scores must be Tensor[B, K] (padded cell scores); '
                         f'got shape {tuple(scores.shape)}')
    if mask.shape != scores.shape:
        raise ValueError(f'mask must be Tensor[B, K] = {tuple(scores.shape)} '
                         f'like scores; got shape {tuple(mask.shape)}')
    if feats is not None and (feats.dim() != 3
                              or feats.shape[:2] != scores.shape):
        raise ValueError(f'feats must be Tensor[B, K, C] with [B, K] = '
                         f'{tuple(scores.shape)} like scores; got shape '
                         f'{tuple(feats.shape)}')


def topk_cells(scores: Tensor, k: int,
               mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``k`` highest-scoring valid cells of every bag, best first.

    Args:
        scores (Tensor[B, K]): Cell scores (any order).
        k (int): Cells to keep (>= 1). Bags with fewer valid cells keep all
            of them, the remaining slots are padding.
        mask (Tensor[B, K], optional): bool, True for valid cells; all valid
            when None.

    Returns:
        tuple: ``values`` Tensor[B, k'] (0 on padding), ``index``
        Tensor[B, k'] long (position in the input bag; valid cells first,
        sorted by decreasing score; padding slots point at arbitrary cells)
        and ``valid`` Tensor[B, k'] bool, with ``k' = min(k, K)``.
    """
    if k < 1:
        raise ValueError(f'top-k needs k >= 1; got {k}')
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    mask = mask.bool()
    check_slide_bag(scores, mask)
    kk = min(int(k), scores.shape[1])
    # padding sorts after every valid cell (even -inf / nan valid scores)
    key = scores.detach().float().nan_to_num(nan=-3e38, neginf=-3e38)
    key = key.masked_fill(~mask, float('-inf'))
    _, index = key.topk(kk, dim=1, largest=True, sorted=True)
    valid = mask.gather(1, index)
    values = scores.gather(1, index).masked_fill(~valid, 0.)
    return values, index, valid


__all__ = ['topk_cells', 'check_slide_bag']
