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

* ``'shi'`` (default of the model; Shi et al., Sec. 2.4, sample rules 1-3;
  classes exactly NILM, LSIL, HSIL in any order, severity NILM < LSIL <
  HSIL), ROI of class ``r``:

  1. NILM ROI: **every** valid cell is a positive of the NILM branch (no
     selection, no negatives; the LSIL / HSIL branches get nothing);
  2. LSIL ROI: the ``N`` top cells are positives and the ``N`` least
     attended cells negatives of the LSIL branch; the ``N`` top cells are
     also negatives of the NILM branch (HSIL branch: nothing);
  3. HSIL ROI: the ``N`` top cells are positives and the ``N`` least
     attended cells negatives of the HSIL branch; the ``N`` top cells are
     also negatives of the NILM and the LSIL branches.

  ``N = n_c x 10 %`` (``ratio``); the paper does not say how ``N`` is
  rounded: we take the nearest integer, at least 1 (see above).
* ``'bethesda_onehot'`` (an option, not the paper): our earlier reading,
  written before the paper's text was at hand: top cells of an ROI of class
  ``r`` are class ``r``, least attended cells of any ROI are NILM, every
  selected cell one-hot over the branches (a NILM ROI uses only its top /
  least cells, an abnormal ROI's least cells are NILM positives).
* ``'clam'`` (CLAM, any class list), ROI of class ``r``: branch ``r`` (in
  class): top -> 1, least -> 0; every branch ``k != r`` (out of class): top
  -> 0 (least unused).

Usage::

    >>> import torch
    >>> from cervdet.models.layers import cell_pseudo_targets
    >>> scores = torch.tensor([[.1, .5, .2, .2]])
    >>> mask = torch.ones(1, 4).bool()
    >>> t = cell_pseudo_targets(scores, mask, torch.tensor([1]), 3,
    ...                         ratio=0.25, rule='shi',
    ...                         class_names=['NILM', 'LSIL', 'HSIL'])
    >>> t[0, 1].tolist(), t[0, 0].tolist()   # [0, 1, -1], [-1, 0, -1]
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from cervdet.datasets.classes import ROI_CLASSES

from ..utils.shape_checks import check_same_2d

RULES = ('shi', 'bethesda_onehot', 'clam')
#: Rule names of earlier cervdet versions -> what to write now.
RENAMED_RULES = {'bethesda': 'bethesda_onehot'}
#: ROI classes in severity order (index = severity), cervdet's vocabulary.
BETHESDA_ORDER: Tuple[str, ...] = ROI_CLASSES


def bethesda_severity(class_names: Optional[Sequence[str]],
                      rule: str = 'shi') -> List[int]:
    """Severity (NILM 0, LSIL 1, HSIL 2) of every class; checks the list.

    Args:
        class_names (Sequence[str]): ROI class names; must be exactly NILM,
            LSIL and HSIL in some order (case-insensitive).
        rule (str): Rule name for the error message.

    Returns:
        list[int]: ``severity[c]`` of class index ``c``.
    """
    names = [str(n).upper() for n in (class_names or ())]
    if sorted(names) != sorted(BETHESDA_ORDER):
        raise ValueError(
            f"rule={rule!r} needs the ROI classes to be exactly NILM, LSIL "
            f'and HSIL (in any order); got class_names={class_names!r}. Set '
            "class_names to these three classes or use rule='clam' for any "
            'other class list')
    return [BETHESDA_ORDER.index(n) for n in names]


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
    check_same_2d(scores, mask, 'scores and mask', 'B, N')
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
        scores (Tensor[B, N]): Attention scores of the cells (CA scores,
            Eq. 9).
        mask (Tensor[B, N]): bool, ``True`` for valid cells.
        roi_labels (Tensor[B]): ROI class indices in ``[0, C)``.
        num_classes (int): Number of classes ``C``.
        ratio (float): Selection ratio (``N = n_c x ratio``). Defaults to
            0.1.
        rule (str): ``'shi'`` (the paper's rules 1-3),
            ``'bethesda_onehot'`` or ``'clam'``. Defaults to ``'clam'``
            (the only rule for any class list).
        class_names (Sequence[str], optional): ROI class names (needed by
            ``'shi'`` and ``'bethesda_onehot'``).

    Returns:
        Tensor[B, N, C]: long targets in ``{1, 0, -1}`` (-1 = unused; always
        -1 on padding).
    """
    if rule in RENAMED_RULES:
        raise ValueError(
            f'rule {rule!r} is now called {RENAMED_RULES[rule]!r} (our '
            "earlier reading); the paper's sample rules 1-3 (Sec. 2.4) are "
            "rule='shi'")
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
    if rule != 'clam' and len(class_names or ()) != num_classes:
        raise ValueError(f'class_names ({class_names!r}) must list the '
                         f'{num_classes} classes')
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
    if rule == 'shi':
        severity = scores.new_tensor(
            bethesda_severity(class_names, rule), dtype=torch.long)  # [C]
        roi_sev = severity[roi_labels]  # [B]
        nilm_roi = (roi_sev == 0)[:, None, None]  # [B, 1, 1]
        is_nilm = (severity == 0)[None, None]  # [1, 1, C]
        lower = (severity[None] < roi_sev[:, None])[:, None]  # [B, 1, C]
        valid = mask.bool()[..., None]  # [B, N, 1]
        # rule 1: every cell of a NILM ROI is a NILM positive
        pos = valid & nilm_roi & is_nilm
        # rules 2-3: top -> positive of the ROI's branch and negative of
        # the lower grades' branches, least -> negative of the ROI's branch
        pos = pos | (top & ~nilm_roi & in_class)
        neg = ~nilm_roi & ((top & lower) | (least & in_class))
        targets[neg] = 0
        targets[pos] = 1
        return targets
    normal = bethesda_normal_index(class_names)
    is_normal = torch.zeros(num_classes, dtype=torch.bool,
                            device=scores.device)
    is_normal[normal] = True
    # 'bethesda_onehot': top -> ROI class, least -> NILM; one-hot
    sel = (top | least).expand_as(targets)
    pseudo = torch.where(top, in_class, is_normal[None, None])  # [B, N, C]
    targets[sel] = pseudo[sel].long()
    return targets


BRANCH_AVERAGES = ('all', 'active')


def cell_branch_loss(logits: Tensor, targets: Tensor,
                     branch_average: str = 'all') -> Tensor:
    """``L_cell``: the class-specific cross-entropies averaged over the
    branches.

    For branch ``c``: ``L_c = mean_{(b, i): t_bic != -1} CE(logits_bic,
    t_bic)`` over the cells of the batch it uses (0 when it uses none).
    ``branch_average='all'``: ``L_cell = (L_1 + ... + L_C) / C``, the
    paper's ``L_cell = (L_NILM + L_LSIL + L_HSIL) / 3`` (Sec. 2.4);
    ``'active'`` (an option): the mean over the branches with at least one
    cell.

    Args:
        logits (Tensor[B, N, C, 2]): Two-way logits (negative, positive) of
            every cell in every branch.
        targets (Tensor[B, N, C]): Targets in ``{1, 0, -1}`` from
            :func:`cell_pseudo_targets`.
        branch_average (str): ``'all'`` (paper) or ``'active'``.

    Returns:
        Tensor: Scalar loss (0 attached to ``logits`` when no cell is
        selected).
    """
    if logits.shape[:-1] != targets.shape or logits.shape[-1] != 2:
        raise ValueError('logits must be Tensor[B, N, C, 2] matching '
                         f'targets Tensor[B, N, C]; got {tuple(logits.shape)} '
                         f'and {tuple(targets.shape)}')
    if branch_average not in BRANCH_AVERAGES:
        raise ValueError(f'branch_average must be one of {BRANCH_AVERAGES}; '
                         f'got {branch_average!r}')
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
    if branch_average == 'all':
        return per_branch.mean()  # (L_NILM + L_LSIL + L_HSIL) / 3
    return per_branch[has].mean()


__all__ = [
    'select_top_least', 'cell_pseudo_targets', 'cell_branch_loss',
    'bethesda_normal_index', 'bethesda_severity'
]
