"""Prototype alignment losses ``loss_pmb`` / ``loss_pmb_u`` of Chai et al.,
"Deep semi-supervised metric learning with dual alignment for cervical cancer
cell detection" (ISBI 2022), Sec. 2.2, and the sigmoid ramp-up of their
weight ``lambda(t)`` (Sec. 2.3).

With ``Phi`` the Euclidean distance, ``C`` the number of classes and ``m``
the margin (1.0 in the paper), Eq. (5)-(6) define for two sets of class
prototypes ``A`` and ``B``::

    L_intra(A, B) = sum_c Phi(A_c, B_c) / C                              (5)
    L_inter(A, B) = sum_c sum_{k != c} max(0, m - Phi(A_c, B_k)) / (C (C - 1))
                                                                         (6)

and Eq. (7) / (8) combine three of them, for the labeled (``P_L^cg``) and the
unlabeled (``P_U^cg``) confidence-guided batch prototypes against the class
means ``P^M`` of the memory bank::

    L_pmb  = L_intra(P^M, P_L^cg) + L_inter(P^M, P_L^cg)
             + L_inter(P_L^cg, P_L^cg)                                    (7)
    L'_pmb = L_intra(P^M, P_U^cg) + L_inter(P^M, P_U^cg)
             + L_inter(P_U^cg, P_U^cg)                                    (8)

The third term pushes the batch's own prototypes of different classes at
least ``m`` apart. A class missing from the batch (or the bank) has no
prototype: its terms are 0. ``normalize='num_classes'`` (the paper) still
divides by ``C`` and ``C (C - 1)``; ``normalize='valid'`` (an option)
divides by the number of classes / ordered pairs that have both prototypes.
"""
import math
from typing import Dict

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ..utils.shape_checks import check_same_2d
from .proxy_metric_loss import euclidean_distance

NORMALIZES = ('num_classes', 'valid')


def _check_protos(a: Tensor, a_present: Tensor, b: Tensor,
                  b_present: Tensor) -> None:
    """Shapes of two prototype sets and their presence masks."""
    check_same_2d(a, b, 'prototype sets', 'C, D')
    num = a.shape[0]
    if a_present.shape != (num, ) or b_present.shape != (num, ):
        raise ValueError(f'presence masks must be Tensor[{num}] bool; got '
                         f'{tuple(a_present.shape)} and '
                         f'{tuple(b_present.shape)}')


def _normalised(total: Tensor, num_valid: Tensor, num_terms: int,
                normalize: str) -> Tensor:
    """``total / num_terms`` ('num_classes') or ``total / num_valid``
    ('valid'); 0 (attached to ``total``) when there is no term."""
    if normalize not in NORMALIZES:
        raise ValueError(f'normalize must be one of {NORMALIZES}; got '
                         f'{normalize!r}')
    denom = num_valid.clamp(min=1).to(total.dtype) \
        if normalize == 'valid' else total.new_tensor(float(max(num_terms,
                                                                1)))
    return torch.where(num_valid > 0, total / denom, total * 0.)


def prototype_intra_loss(a: Tensor,
                         a_present: Tensor,
                         b: Tensor,
                         b_present: Tensor,
                         normalize: str = 'num_classes') -> Tensor:
    """``L_intra(A, B)`` of Eq. (5): mean distance of same-class prototypes.

    Args:
        a (Tensor[C, D]): Prototypes ``A`` (rows of absent classes ignored).
        a_present (Tensor[C]): bool, ``A_c`` exists.
        b (Tensor[C, D]): Prototypes ``B``.
        b_present (Tensor[C]): bool, ``B_c`` exists.
        normalize (str): ``'num_classes'`` (divide by ``C``, Eq. 5) or
            ``'valid'`` (by the number of classes in both).

    Returns:
        Tensor: Scalar; gradient flows to both ``a`` and ``b`` (detach a
        constant side before calling). Never NaN.
    """
    _check_protos(a, a_present, b, b_present)
    valid = a_present.bool() & b_present.bool()  # [C]
    dist = euclidean_distance(a, b.to(a.dtype)).diagonal()  # [C]
    total = torch.where(valid, dist, torch.zeros_like(dist)).sum()
    return _normalised(total, valid.sum(), a.shape[0], normalize)


def prototype_inter_loss(a: Tensor,
                         a_present: Tensor,
                         b: Tensor,
                         b_present: Tensor,
                         margin: float = 1.0,
                         normalize: str = 'num_classes') -> Tensor:
    """``L_inter(A, B)`` of Eq. (6): hinge on the distance between the
    prototypes of different classes,
    ``sum_c sum_{k != c} max(0, m - Phi(A_c, B_k)) / (C (C - 1))``.

    Symmetric in ``A`` and ``B`` (``Phi`` is). ``A`` and ``B`` may be the
    same tensor (the within-batch term ``L_inter(P^cg, P^cg)`` of Eq. 7-8).

    Args:
        a (Tensor[C, D]): Prototypes ``A``.
        a_present (Tensor[C]): bool, ``A_c`` exists.
        b (Tensor[C, D]): Prototypes ``B``.
        b_present (Tensor[C]): bool, ``B_k`` exists.
        margin (float): ``m`` (1.0 in the paper).
        normalize (str): ``'num_classes'`` (divide by ``C (C - 1)``, Eq. 6)
            or ``'valid'`` (by the number of ordered pairs ``c != k`` with
            both prototypes).

    Returns:
        Tensor: Scalar; 0 for ``C = 1``. Never NaN.
    """
    _check_protos(a, a_present, b, b_present)
    num = a.shape[0]
    eye = torch.eye(num, dtype=torch.bool, device=a.device)
    valid = a_present.bool()[:, None] & b_present.bool()[None, :] & ~eye
    dist = euclidean_distance(a, b.to(a.dtype))  # [C, C]
    hinge = (margin - dist).clamp(min=0)
    total = torch.where(valid, hinge, torch.zeros_like(hinge)).sum()
    return _normalised(total, valid.sum(), num * (num - 1), normalize)


def prototype_alignment_terms(protos: Tensor,
                              present: Tensor,
                              bank_means: Tensor,
                              bank_present: Tensor,
                              margin: float = 1.0,
                              normalize: str = 'num_classes',
                              with_batch_inter: bool = True
                              ) -> Dict[str, Tensor]:
    """The three terms of Eq. (7) / (8) for one set of batch prototypes.

    Args:
        protos (Tensor[C, D]): Confidence-guided batch prototypes ``P^cg``
            (``P_L^cg`` or ``P_U^cg``), with gradient.
        present (Tensor[C]): bool, class ``c`` is in the batch.
        bank_means (Tensor[C, D]): Memory-bank class means ``P^M`` (treated
            as constants: detached here).
        bank_present (Tensor[C]): bool, class ``k`` is in the bank.
        margin (float): ``m`` of Eq. (6). Defaults to 1.0.
        normalize (str): See :func:`prototype_intra_loss`.
        with_batch_inter (bool): Include ``L_inter(P^cg, P^cg)`` (the paper,
            Eq. 7-8). ``False`` is the two-term form of earlier cervdet
            versions (an ablation only).

    Returns:
        dict[str, Tensor]: ``intra`` = ``L_intra(P^M, P^cg)``,
        ``inter_bank`` = ``L_inter(P^M, P^cg)``, ``inter_batch`` =
        ``L_inter(P^cg, P^cg)`` (0 without ``with_batch_inter``).
    """
    bank_means = bank_means.detach().to(protos.dtype)
    present = present.bool()
    bank_present = bank_present.bool()
    intra = prototype_intra_loss(bank_means, bank_present, protos, present,
                                 normalize)
    inter_bank = prototype_inter_loss(bank_means, bank_present, protos,
                                      present, margin, normalize)
    if with_batch_inter:
        inter_batch = prototype_inter_loss(protos, present, protos, present,
                                           margin, normalize)
    else:
        inter_batch = protos.sum() * 0.
    zero = protos.sum() * 0.  # keeps every term attached to ``protos``
    return dict(intra=intra + zero, inter_bank=inter_bank + zero,
                inter_batch=inter_batch + zero)


def prototype_alignment_loss(protos: Tensor,
                             present: Tensor,
                             bank_means: Tensor,
                             bank_present: Tensor,
                             margin: float = 1.0,
                             normalize: str = 'num_classes',
                             with_batch_inter: bool = True) -> Tensor:
    """``L_pmb`` (Eq. 7) or ``L'_pmb`` (Eq. 8): the sum of the three terms of
    :func:`prototype_alignment_terms` (same arguments).

    Returns:
        Tensor: Scalar loss; 0 attached to the graph of ``protos`` when no
        term is valid, never NaN.
    """
    check_same_2d(protos, bank_means, 'protos and bank_means', 'C, D')
    terms = prototype_alignment_terms(protos, present, bank_means,
                                      bank_present, margin, normalize,
                                      with_batch_inter)
    return terms['intra'] + terms['inter_bank'] + terms['inter_batch']


def sigmoid_rampup(step: float, rampup_steps: float) -> float:
    """Sigmoid-shaped ramp-up weight ``lambda(t)`` (Laine & Aila, 2017).

    Chai et al. Sec. 2.3 take ``lambda(t)`` "following typical
    semi-supervised learning methods [17, 18]" (CSD, Mean Teacher), whose
    ramp-up is ``lambda(t) = exp(-5 (1 - t / T)^2)`` for ``t < T`` and 1
    afterwards (``T`` is not given in the paper).

    Args:
        step (float): Current step (iteration or epoch) ``t``; negative
            steps count as 0.
        rampup_steps (float): Ramp-up length ``T``; ``T <= 0`` disables the
            ramp-up (always 1).

    Returns:
        float: ``lambda(t)`` in ``(0, 1]`` (``exp(-5)`` at ``t = 0``).
    """
    if rampup_steps <= 0 or step >= rampup_steps:
        return 1.0
    phase = 1.0 - max(float(step), 0.0) / float(rampup_steps)
    return math.exp(-5.0 * phase * phase)


@MODELS.register_module()
class PrototypeAlignmentLoss(nn.Module):
    """Prototype alignment loss of Eq. (7) / (8); see
    :func:`prototype_alignment_loss`.

    The same module serves ``loss_pmb`` (labeled confidence-guided
    prototypes) and ``loss_pmb_u`` (unlabeled ones); the ramp-up weight
    :func:`sigmoid_rampup` is applied by the caller.

    Args:
        margin (float): ``m`` of Eq. (6). Defaults to 1.0 (the paper).
        normalize (str): ``'num_classes'`` (the paper's ``/ C`` and
            ``/ C (C - 1)``, absent classes count 0) or ``'valid'`` (mean
            over the classes / pairs present). Defaults to
            ``'num_classes'``.
        with_batch_inter (bool): Include the within-batch term
            ``L_inter(P^cg, P^cg)`` of Eq. (7)-(8). Defaults to True (the
            paper).
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 1.0,
                 normalize: str = 'num_classes',
                 with_batch_inter: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if normalize not in NORMALIZES:
            raise ValueError(f'normalize must be one of {NORMALIZES}; got '
                             f'{normalize!r}')
        self.margin = float(margin)
        self.normalize = normalize
        self.with_batch_inter = bool(with_batch_inter)
        self.loss_weight = float(loss_weight)

    def forward(self, protos: Tensor, present: Tensor, bank_means: Tensor,
                bank_present: Tensor) -> Tensor:
        """Weighted prototype alignment loss.

        Args:
            protos (Tensor[C, D]): Confidence-guided batch prototypes.
            present (Tensor[C]): bool, classes present in the batch.
            bank_means (Tensor[C, D]): Memory bank class means ``P^M``.
            bank_present (Tensor[C]): bool, classes present in the bank.

        Returns:
            Tensor: Scalar ``loss_weight * prototype_alignment_loss(...)``.
        """
        return self.loss_weight * prototype_alignment_loss(
            protos, present, bank_means, bank_present, self.margin,
            self.normalize, self.with_batch_inter)

    def extra_repr(self) -> str:
        return (f'margin={self.margin}, normalize={self.normalize!r}, '
                f'with_batch_inter={self.with_batch_inter}, '
                f'loss_weight={self.loss_weight}')


__all__ = [
    'PrototypeAlignmentLoss', 'prototype_alignment_loss',
    'prototype_alignment_terms', 'prototype_intra_loss',
    'prototype_inter_loss', 'sigmoid_rampup'
]
