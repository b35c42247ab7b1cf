"""Cell-level pseudo labels from attention scores (Shi et al., ISBI 2022, after
CLAM's instance-level clustering, Lu et al., Nat. Biomed. Eng. 2021) and the
cell-branch loss ``L_cell``.

Every class ``c`` owns a binary cell branch ("is this cell of class c?").
In every ROI, the ``N_sel`` most and the ``N_sel`` least attended valid cells
(by the detached cross-attention scores) are selected,
``N_sel = max(1, round(ratio * n_valid))``. To keep the two sets disjoint,
``N_sel`` is capped at ``n_valid // 2`` when ``n_valid >= 2``; an ROI with a
single cell gives only the top set (that cell). Ties in the scores are
broken by cell order (the ranking is a stable sort), and the least set is
the tail of the same ranking, so the sets never overlap.

Targets are a dense ``Tensor[B, N, C]`` with ``1`` (positive for branch c),
``0`` (negative) and ``-1`` (not used by branch c).

Rules (``rule``):

* ``'clam'`` (CLAM, any class list), ROI of class ``r``: branch ``r`` (in
  class): top -> 1, least -> 0; every branch ``k != r`` (out of class): top
  -> 0 (least unused).
* ``'bethesda'`` (classes exactly NILM, LSIL, HSIL in any order; ordinal
  NILM < LSIL < HSIL). We could not read the paper's own sample rules; this
  is **our reading** of them, from the Bethesda logic that an ROI's label is
  its worst cell and that abnormal ROIs still hold normal cells:

  - the top cells of an ROI of class ``r`` are cells of class ``r`` (for a
    NILM ROI: normal cells);
  - the least attended cells of any ROI are normal (NILM) cells (a NILM ROI
    contains only normal cells; in an LSIL / HSIL ROI the least attended
    cells are the background of normal cells);

  and every selected cell is a positive of the branch of its pseudo class
  and a negative of all the other branches (one-hot). Hence: a NILM ROI's
  selected cells are positives of NILM and negatives of LSIL and HSIL; an
  LSIL ROI's top cells are LSIL positives and NILM / HSIL negatives, its
  least cells NILM positives and LSIL / HSIL negatives; an HSIL ROI's top
  cells are HSIL positives and NILM / LSIL negatives, its least cells NILM
  positives and LSIL / HSIL negatives. In particular no cell of an ROI is
  ever a positive of a class more severe than the ROI's label.

Usage::

    >>> import torch
    >>> from cervdet.models.layers import cell_pseudo_targets
    >>> scores = torch.tensor([[.1, .5, .2, .2]])
    >>> mask = torch.ones(1, 4).bool()
    >>> t = cell_pseudo_targets(scores, mask, torch.tensor([1]), 3,
    ...                         ratio=0.25, rule='bethesda',
    ...                         class_names=['NILM', 'LSIL', 'HSIL'])
    >>> t[0, 1].tolist(), t[0, 0].tolist()   # [0, 1, 0], [1, 0, 0]
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

RULES = ('bethesda', 'clam')
BETHESDA_ORDER = ('NILM', 'LSIL', 'HSIL')


def bethesda_normal_index(class_names: Optional[Sequence[str]]) -> int:
    """Index of NILM in ``class_names``; checks the class list.

    Args:
        class_names (Sequence[str]): ROI class names; must be exactly NILM,
            LSIL and HSIL in some order (case-insensitive).

    Returns:
        int: Index of the NILM (normal) class.
    """
    names = [str(n).upper() for n in (class_names or ())]
    if sorted(names) != sorted(BETHESDA_ORDER):
        raise ValueError(
            "rule='bethesda' needs the ROI classes to be exactly NILM, LSIL "
            f'and HSIL (in any order); got class_names={class_names!r}. Set '
            "class_names to these three classes or use rule='clam' for any "
            'other class list')
    return names.index('NILM')


def select_top_least(scores: Tensor, mask: Tensor,
                     ratio: float = 0.1) -> Tuple[Tensor, Tensor]:
    """Most and least attended valid cells of every ROI.

    Args:
        scores (Tensor[B, N]): Attention scores (detached inside).
        mask (Tensor[B, N]): bool, ``True`` for valid cells.
        ratio (float): Fraction of the valid cells in each set (0.1 in the
            paper).

    Returns:
        tuple: ``top`` and ``least`` Tensor[B, N] bool, disjoint, with
        ``N_sel = max(1, round(ratio * n_valid))`` cells each, capped at
        ``n_valid // 2`` for ``n_valid >= 2``; for ``n_valid == 1`` ``top``
        holds the cell and ``least`` is empty; ROIs without a valid cell
        select nothing.
    """
    if scores.shape != mask.shape or scores.dim() != 2:
        raise ValueError('scores and mask must both be Tensor[B, N]; got '
                         f'{tuple(scores.shape)} and {tuple(mask.shape)}')
    if not 0 < ratio <= 1:
        raise ValueError(f'ratio must be in (0, 1]; got {ratio}')
    mask = mask.bool()
    scores = scores.detach().float()
    n_valid = mask.sum(dim=1)  # [B]
    n_sel = torch.round(ratio * n_valid.float()).long().clamp(min=1)
    n_sel = torch.where(n_valid >= 2, torch.minimum(n_sel, n_valid // 2),
                        n_sel.clamp(max=1))
    n_sel = torch.where(n_valid > 0, n_sel, torch.zeros_like(n_sel))
    n_least = torch.where(n_valid >= 2, n_sel, torch.zeros_like(n_sel))
    # one ranking per ROI: valid cells by descending score, padding last
    ranked = scores.masked_fill(~mask, float('-inf'))
    order = torch.argsort(ranked, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(
        1, order,
        torch.arange(order.shape[1], device=order.device).expand_as(order))
    top = (rank < n_sel[:, None]) & mask
    least = (rank >= (n_valid - n_least)[:, None]) & mask
    return top, least


def cell_pseudo_targets(scores: Tensor,
                        mask: Tensor,
                        roi_labels: Tensor,
                        num_classes: int,
                        ratio: float = 0.1,
                        rule: str = 'clam',
                        class_names: Optional[Sequence[str]] = None
                        ) -> Tensor:
    """Binary targets of the ``C`` cell branches (see the module docstring).

    Args:
        scores (Tensor[B, N]): Attention scores of the cells (CA scores).
        mask (Tensor[B, N]): bool, ``True`` for valid cells.
        roi_labels (Tensor[B]): ROI class indices in ``[0, C)``.
        num_classes (int): Number of classes ``C``.
        ratio (float): Selection ratio. Defaults to 0.1.
        rule (str): ``'clam'`` or ``'bethesda'``. Defaults to ``'clam'``.
        class_names (Sequence[str], optional): ROI class names (needed by
            ``'bethesda'``).

    Returns:
        Tensor[B, N, C]: long targets in ``{1, 0, -1}`` (-1 = unused; always
        -1 on padding and unselected cells).
    """
    if rule not in RULES:
        raise ValueError(f'rule must be one of {RULES}; got {rule!r}')
    roi_labels = roi_labels.long().view(-1)
    if roi_labels.shape[0] != scores.shape[0]:
        raise ValueError(f'one ROI label per ROI needed; got '
                         f'{roi_labels.shape[0]} labels for {scores.shape[0]} '
                         'ROIs')
    if roi_labels.numel() and (int(roi_labels.min()) < 0
                               or int(roi_labels.max()) >= num_classes):
        raise ValueError(f'roi_labels must be in [0, {num_classes}); got '
                         f'{roi_labels.tolist()}')
    top, least = select_top_least(scores, mask, ratio)
    top, least = top[..., None], least[..., None]  # [B, N, 1]
    in_class = F.one_hot(roi_labels, num_classes).bool()[:, None]  # [B,1,C]
    targets = torch.full((*scores.shape, num_classes), -1, dtype=torch.long,
                         device=scores.device)
    if rule == 'clam':
        targets[(top & in_class).expand_as(targets)] = 1
        targets[(top & ~in_class).expand_as(targets)] = 0
        targets[(least & in_class).expand_as(targets)] = 0
        return targets
    if len(class_names or ()) != num_classes:
        raise ValueError(f'class_names ({class_names!r}) must list the '
                         f'{num_classes} classes')
    normal = bethesda_normal_index(class_names)
    is_normal = torch.zeros(num_classes, dtype=torch.bool,
                            device=scores.device)
    is_normal[normal] = True
    # pseudo class: top -> ROI class, least -> NILM (our reading); one-hot
    sel = (top | least).expand_as(targets)
    pseudo = torch.where(top, in_class, is_normal[None, None])  # [B, N, C]
    targets[sel] = pseudo[sel].long()
    return targets


def cell_branch_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """``L_cell``: mean over the class branches of their binary
    cross-entropy over the cells they use.

    For branch ``c``: ``CE_c = mean_{(b, i): t_bic != -1} CE(logits_bic,
    t_bic)`` over all selected cells of the batch; ``L_cell = mean_c CE_c``
    over the branches with at least one selected cell.

    Args:
        logits (Tensor[B, N, C, 2]): Two-way logits (negative, positive) of
            every cell in every branch.
        targets (Tensor[B, N, C]): Targets in ``{1, 0, -1}`` from
            :func:`cell_pseudo_targets`.

    Returns:
        Tensor: Scalar loss (0 attached to ``logits`` when no cell is
        selected).
    """
    if logits.shape[:-1] != targets.shape or logits.shape[-1] != 2:
        raise ValueError('logits must be Tensor[B, N, C, 2] matching '
                         f'targets Tensor[B, N, C]; got {tuple(logits.shape)} '
                         f'and {tuple(targets.shape)}')
    used = targets >= 0
    ce = F.cross_entropy(
        logits.reshape(-1, 2).float(),
        targets.clamp(min=0).reshape(-1),
        reduction='none').view(targets.shape)
    ce = ce * used.to(ce.dtype)
    count = used.sum(dim=(0, 1))  # [C]
    per_branch = ce.sum(dim=(0, 1)) / count.clamp(min=1).to(ce.dtype)
    has = count > 0
    if not bool(has.any()):
        return logits.sum() * 0.
    return per_branch[has].mean()


__all__ = [
    'select_top_least', 'cell_pseudo_targets', 'cell_branch_loss',
    'bethesda_normal_index'
]
