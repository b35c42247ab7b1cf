"""Class prototypes and the prototype memory bank of Chai et al., "Deep
semi-supervised metric learning with dual alignment for cervical cancer cell
detection" (ISBI 2022).

A *prototype* is the (weighted) mean embedding of the proposals of one class
in a batch: ground-truth-guided prototypes average labeled proposals by their
ground-truth class; confidence-guided prototypes weight proposals by their
predicted confidence (separately for labeled and unlabeled images). The bank
keeps the ground-truth-guided prototypes of previous steps (FIFO) and gives
the per-class means the prototype alignment losses compare against.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine import dist
from torch import Tensor


def class_prototypes(
        embeds: Tensor,
        labels: Tensor,
        num_classes: int,
        weights: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Per-class (weighted) mean embedding of a batch of proposals.

    ``proto_c = sum_{i: y_i = c} w_i x_i / sum_{i: y_i = c} w_i`` (ground-
    truth-guided prototypes with ``w_i = 1`` and ground-truth labels;
    confidence-guided prototypes with ``w_i`` the confidence of the predicted
    class ``y_i``; Chai et al., Eq. 4).

    Args:
        embeds (Tensor[N, D]): Proposal embeddings.
        labels (Tensor[N]): Foreground class of every proposal in
            ``[0, num_classes)``.
        num_classes (int): Number of classes ``C``.
        weights (Tensor[N], optional): Non-negative weights (e.g. scores).
            Defaults to 1 for every proposal.

    Returns:
        tuple: ``protos`` Tensor[C, D] (rows of absent classes are 0) and
        ``present`` Tensor[C] bool (class has a positive total weight).
    """
    if embeds.dim() != 2 or labels.shape != embeds.shape[:1]:
        raise ValueError('class_prototypes needs embeds Tensor[N, D] and '
                         f'labels Tensor[N]; got {tuple(embeds.shape)} and '
                         f'{tuple(labels.shape)}')
    if labels.numel() and (int(labels.min()) < 0
                           or int(labels.max()) >= num_classes):
        raise ValueError(f'labels must be in [0, {num_classes}); got range '
                         f'[{int(labels.min())}, {int(labels.max())}]')
    labels = labels.long()
    if weights is None:
        weights = embeds.new_ones(embeds.shape[0])
    weights = weights.to(embeds.dtype)
    sums = embeds.new_zeros(num_classes, embeds.shape[1]).index_add(
        0, labels, embeds * weights[:, None])
    totals = embeds.new_zeros(num_classes).index_add(0, labels, weights)
    present = totals > 0
    protos = sums / torch.where(present, totals,
                                torch.ones_like(totals))[:, None]
    return protos, present


def soft_class_prototypes(embeds: Tensor,
                          cls_scores: Tensor,
                          eps: float = 1e-12) -> Tuple[Tensor, Tensor]:
    """Confidence-guided prototypes weighting every proposal by the score of
    every class (a soft alternative to :func:`class_prototypes` with the
    argmax class).

    ``proto_c = sum_i s_ic x_i / sum_i s_ic``.

    Args:
        embeds (Tensor[N, D]): Proposal embeddings.
        cls_scores (Tensor[N, C]): Foreground class scores (drop the
            background column of a softmax head first); treated as
            constants.
        eps (float): A class is present when its total score is ``> eps``.

    Returns:
        tuple: ``protos`` Tensor[C, D] and ``present`` Tensor[C] bool.
    """
    scores = cls_scores.detach().to(embeds.dtype)
    totals = scores.sum(dim=0)  # [C]
    present = totals > eps
    protos = scores.t() @ embeds / torch.where(
        present, totals, torch.ones_like(totals))[:, None]
    return protos, present


@MODELS.register_module()
class PrototypeMemoryBank(nn.Module):
    """FIFO memory of class prototypes from previous training steps.

    Buffers (persistent, so saved in checkpoints and moved with the model):
    ``protos`` Tensor[size, D], ``labels`` Tensor[size] (``-1`` = empty
    slot), ``ptr`` (next slot to write; the oldest entry once full) and
    ``fill`` (number of filled slots, ``<= size``; for logs).

    Under ``torch.distributed`` :meth:`push` gathers the entries pushed by
    every rank (rank 0's first, then rank 1's, ...) and writes them all, so
    every rank's bank holds identical content in the same order. Every rank
    must call :meth:`push` at the same steps (it is a collective), possibly
    with no entry.

    Args:
        num_classes (int): Number of foreground classes ``C``.
        embed_dim (int): Prototype dimension ``D``.
        size (int): Number of entries kept. Defaults to 1024.
    """

    def __init__(self, num_classes: int, embed_dim: int,
                 size: int = 1024) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f'size must be >= 1; got {size}')
        self.num_classes = int(num_classes)
        self.embed_dim = int(embed_dim)
        self.size = int(size)
        self.register_buffer('protos', torch.zeros(self.size, self.embed_dim))
        self.register_buffer('labels',
                             torch.full((self.size, ), -1, dtype=torch.long))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))
        self.register_buffer('fill', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _gather(self, protos: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Entries of all ranks in rank order (identity when not
        distributed); ranks may push different numbers ``P_r``."""
        if dist.get_world_size() == 1:
            return protos, labels
        counts = torch.stack(
            dist.all_gather(labels.new_tensor([labels.shape[0]])))[:, 0]
        max_count = int(counts.max())
        pad = max_count - labels.shape[0]
        protos = torch.cat([protos, protos.new_zeros(pad, self.embed_dim)])
        labels = torch.cat([labels, labels.new_full((pad, ), -1)])
        all_protos = torch.stack(dist.all_gather(protos))  # [R, P_max, D]
        all_labels = torch.stack(dist.all_gather(labels))  # [R, P_max]
        valid = torch.arange(max_count, device=counts.device)[None] < \
            counts[:, None]  # [R, P_max]
        valid = valid.to(all_labels.device)
        return all_protos[valid], all_labels[valid]

    @torch.no_grad()
    def push(self, protos: Tensor, labels: Tensor) -> None:
        """Append entries, overwriting the oldest ones once full.

        Args:
            protos (Tensor[P, D]): Prototypes to store (detached; e.g. the
                present rows of the labeled ground-truth-guided prototypes).
            labels (Tensor[P]): Their classes in ``[0, C)``.
        """
        if protos.dim() != 2 or protos.shape[1] != self.embed_dim or \
                labels.shape != protos.shape[:1]:
            raise ValueError(
                f'push needs protos Tensor[P, {self.embed_dim}] and labels '
                f'Tensor[P]; got {tuple(protos.shape)} and '
                f'{tuple(labels.shape)}')
        if labels.numel() and (int(labels.min()) < 0
                               or int(labels.max()) >= self.num_classes):
            raise ValueError(f'labels must be in [0, {self.num_classes}); '
                             f'got range [{int(labels.min())}, '
                             f'{int(labels.max())}]')
        protos = protos.detach().to(self.protos)
        labels = labels.detach().to(self.labels)
        protos, labels = self._gather(protos, labels)
        n = labels.shape[0]
        if n == 0:
            return
        if n > self.size:  # only the newest ``size`` entries survive
            protos, labels = protos[-self.size:], labels[-self.size:]
            n = self.size
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % \
            self.size
        self.protos[slots] = protos
        self.labels[slots] = labels
        self.ptr.copy_((self.ptr + n) % self.size)
        self.fill.copy_(torch.clamp(self.fill + n, max=self.size))

    def entries(self) -> Tuple[Tensor, Tensor]:
        """Filled entries from the oldest to the newest.

        Returns:
            tuple: ``protos`` Tensor[F, D] and ``labels`` Tensor[F] with
            ``F = fill``.
        """
        fill = int(self.fill)
        start = (self.ptr - fill) % self.size
        order = (start + torch.arange(fill, device=self.ptr.device)) % \
            self.size
        return self.protos[order], self.labels[order]

    def class_means(self) -> Tuple[Tensor, Tensor]:
        """Mean stored prototype of every class.

        Returns:
            tuple: ``means`` Tensor[C, D] (0 for classes not in the bank) and
            ``present`` Tensor[C] bool.
        """
        filled = self.labels >= 0
        return class_prototypes(self.protos[filled], self.labels[filled],
                                self.num_classes)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, embed_dim={self.embed_dim}, '
                f'size={self.size}, fill={int(self.fill)}')


__all__ = ['PrototypeMemoryBank', 'class_prototypes', 'soft_class_prototypes']
