"""Prototype alignment losses ``loss_pmb`` / ``loss_pmb_u`` of Chai et al.,
"Deep semi-supervised metric learning with dual alignment for cervical cancer
cell detection" (ISBI 2022), and the sigmoid ramp-up of their weight.

A batch's confidence-guided prototypes (labeled images for ``loss_pmb``,
unlabeled images for ``loss_pmb_u``; see
:func:`~cervdet.models.layers.class_prototypes`) are pulled towards the mean
bank prototype of their class and pushed at least ``margin`` away from the
other classes' mean bank prototypes
(:class:`~cervdet.models.layers.PrototypeMemoryBank`).
"""
import math

import torch
import torch.nn as nn
from torch import Tensor

from mmdet.registry import MODELS
from .proxy_metric_loss import euclidean_distance


def prototype_alignment_loss(protos: Tensor,
                             present: Tensor,
                             bank_means: Tensor,
                             bank_present: Tensor,
                             margin: float = 1.0) -> Tensor:
    """Intra-class pull plus inter-class hinge between batch and bank
    prototypes.

    Chai et al. (2022), eqs. (7) and (8) (the terms as given in the issue
    text), with ``d`` the Euclidean distance, ``q_c`` the batch prototypes
    and ``m_k`` the bank means::

        L_intra = mean_{c in A} d(q_c, m_c)
        L_inter = mean_{c in B} mean_{k in K_c} max(0, margin - d(q_c, m_k))
        L       = L_intra + L_inter

    where ``A`` are the classes present in the batch *and* the bank, ``K_c``
    the bank classes ``k != c`` and ``B`` the batch classes with a non-empty
    ``K_c`` (a batch class missing from the bank still gets the inter term).
    A term with no pair is 0.

    Args:
        protos (Tensor[C, D]): Batch prototypes ``q_c`` (with gradient).
        present (Tensor[C]): bool, class ``c`` is in the batch.
        bank_means (Tensor[C, D]): Bank means ``m_k`` (constants).
        bank_present (Tensor[C]): bool, class ``k`` is in the bank.
        margin (float): Hinge margin of the inter term. Defaults to 1.0.

    Returns:
        Tensor: Scalar loss; 0 attached to the graph of ``protos`` when no
        pair is valid, never NaN.
    """
    if protos.shape != bank_means.shape or protos.dim() != 2:
        raise ValueError('protos and bank_means must both be Tensor[C, D]; '
                         f'got {tuple(protos.shape)} and '
                         f'{tuple(bank_means.shape)}')
    num_classes = protos.shape[0]
    present = present.bool()
    bank_present = bank_present.bool()
    dist = euclidean_distance(protos, bank_means.detach().to(protos.dtype))
    eye = torch.eye(num_classes, dtype=torch.bool, device=protos.device)
    zero = protos.sum() * 0.

    intra_valid = present & bank_present  # [C]
    n_intra = intra_valid.sum()
    intra = torch.where(intra_valid, dist.diagonal(),
                        torch.zeros_like(dist.diagonal())).sum()
    loss_intra = torch.where(n_intra > 0, intra / n_intra.clamp(min=1), zero)

    inter_valid = present[:, None] & bank_present[None, :] & ~eye  # [C, C]
    hinge = torch.where(inter_valid, (margin - dist).clamp(min=0),
                        torch.zeros_like(dist))
    n_k = inter_valid.sum(dim=1)  # [C]
    per_class = hinge.sum(dim=1) / n_k.clamp(min=1)
    has_k = n_k > 0
    n_inter = has_k.sum()
    loss_inter = torch.where(n_inter > 0,
                             per_class.sum() / n_inter.clamp(min=1), zero)
    return loss_intra + loss_inter + zero


def sigmoid_rampup(step: float, rampup_steps: float) -> float:
    """Sigmoid-shaped ramp-up weight ``lambda(t)`` (Laine & Aila, 2017).

    ``lambda(t) = exp(-5 (1 - t / T)^2)`` for ``t < T`` and 1 afterwards.

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
    """Prototype alignment loss; see :func:`prototype_alignment_loss`.

    The same module serves ``loss_pmb`` (labeled confidence-guided
    prototypes) and ``loss_pmb_u`` (unlabeled ones); the ramp-up weight
    :func:`sigmoid_rampup` is applied by the caller.

    Args:
        margin (float): Inter-class hinge margin. Defaults to 1.0.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self, margin: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin = float(margin)
        self.loss_weight = float(loss_weight)

    def forward(self, protos: Tensor, present: Tensor, bank_means: Tensor,
                bank_present: Tensor) -> Tensor:
        """Weighted prototype alignment loss.

        Args:
            protos (Tensor[C, D]): Batch prototypes.
            present (Tensor[C]): bool, classes present in the batch.
            bank_means (Tensor[C, D]): Memory bank class means.
            bank_present (Tensor[C]): bool, classes present in the bank.

        Returns:
            Tensor: Scalar ``loss_weight * prototype_alignment_loss(...)``.
        """
        return self.loss_weight * prototype_alignment_loss(
            protos, present, bank_means, bank_present, self.margin)

    def extra_repr(self) -> str:
        return f'margin={self.margin}, loss_weight={self.loss_weight}'


__all__ = [
    'PrototypeAlignmentLoss', 'prototype_alignment_loss', 'sigmoid_rampup'
]
