"""Proxy-based proposal alignment of Chai et al., "Deep semi-supervised metric
learning with dual alignment for cervical cancer cell detection" (ISBI 2022).

Every foreground class ``c`` owns a learnable proxy ``p_c`` in the metric
space. A proposal's embedding ``x`` (from
:class:`~cervdet.models.layers.MetricProjectionHead`) is pulled towards the
proxy of its class and pushed from the other proxies, a Proxy-NCA loss
(Movshovitz-Attias et al., 2017) with Euclidean distance ``d``::

    L = -log( exp(-d(x, p_c)) / sum_{k != c} exp(-d(x, p_k)) )

``loss_pml`` uses labeled proposals (ground-truth labels) and trains both the
embeddings and the proxies; ``loss_pml_u`` uses unlabeled proposals with
pseudo labels (predictions above a confidence threshold) against *detached*
proxies, so the proxies are learned from labeled data only.

Only foreground proposals enter: labels are class indices in
``[0, num_classes)``; mmdet's background label ``num_classes`` is dropped by
:class:`ProxyMetricLoss` (the pure :func:`proxy_nca_loss` rejects it).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

DENOMINATORS = ('exclude_true', 'all')


def euclidean_distance(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise Euclidean distances with a finite gradient at distance 0.

    Args:
        a (Tensor[N, D]): First set of points.
        b (Tensor[M, D]): Second set of points.

    Returns:
        Tensor[N, M]: ``||a_i - b_j||_2`` (exactly 0 for equal points; the
        gradient there is 0 instead of NaN).
    """
    sq = (a[:, None, :] - b[None, :, :]).pow(2).sum(dim=-1)
    positive = sq > 0
    safe = torch.where(positive, sq, torch.ones_like(sq))
    return torch.where(positive, safe.sqrt(), torch.zeros_like(sq))


def check_labels(labels: Tensor, num_classes: int, name: str = 'labels'):
    """Raise ``ValueError`` unless every label is in ``[0, num_classes)``.

    Args:
        labels (Tensor[N]): Integer class labels.
        num_classes (int): Number of foreground classes ``C``.
        name (str): Name used in the error message.
    """
    if labels.dim() != 1:
        raise ValueError(f'{name} must be Tensor[N]; got shape '
                         f'{tuple(labels.shape)}')
    if labels.numel() and (int(labels.min()) < 0
                           or int(labels.max()) >= num_classes):
        raise ValueError(
            f'{name} must be foreground class indices in [0, {num_classes}) '
            f'(background proposals must be removed first); got range '
            f'[{int(labels.min())}, {int(labels.max())}]')


def proxy_nca_loss(embeds: Tensor,
                   labels: Tensor,
                   proxies: Tensor,
                   denominator: str = 'exclude_true',
                   weights: Optional[Tensor] = None) -> Tensor:
    """Proxy-NCA loss of proposal embeddings against class proxies.

    Chai et al. (2022), Sec. 2.1, Eq. (2) (labeled) and Eq. (3) (unlabeled,
    pseudo labels), per proposal ``i`` with class ``c = labels[i]``::

        'exclude_true':  l_i = d(x_i, p_c) + log sum_{k != c} exp(-d(x_i, p_k))
        'all':           l_i = d(x_i, p_c) + log sum_{k}      exp(-d(x_i, p_k))

    ``'exclude_true'`` is the paper's form (Eq. 2 sums over ``k != c``, as
    the original Proxy-NCA [14]); the per-proposal losses are averaged (the
    paper does not state the reduction). It
    is **unbounded below**: once ``x_i`` is closer to ``p_c`` than to the
    other proxies by more than ``log(C - 1)`` the loss is negative, and it
    keeps decreasing as the other proxies move away (scaling the metric
    space up lowers it without limit). ``'all'`` is the standard softmax
    cross-entropy over negative distances (``-log softmax(-d)_c``): it is
    ``>= 0`` and saturates at 0, which is the safer choice for training
    without normalised embeddings. ``'exclude_true'`` needs ``C >= 2``.

    Args:
        embeds (Tensor[N, D]): Proposal embeddings ``x_i``.
        labels (Tensor[N]): Foreground class of every proposal, in
            ``[0, C)``.
        proxies (Tensor[C, D]): Class proxies ``p_k`` (pass
            ``proxies.detach()`` to keep them out of the graph).
        denominator (str): ``'exclude_true'`` or ``'all'``.
        weights (Tensor[N], optional): Per-proposal weights; the loss is the
            weighted mean ``sum_i w_i l_i / sum_i w_i``. Defaults to the plain
            mean.

    Returns:
        Tensor: Scalar loss; 0 attached to the graph of ``embeds`` and
        ``proxies`` when there is no proposal (or all weights are 0).
    """
    if denominator not in DENOMINATORS:
        raise ValueError(f'denominator must be one of {DENOMINATORS}; got '
                         f'{denominator!r}')
    num_classes = proxies.shape[0]
    if denominator == 'exclude_true' and num_classes < 2:
        raise ValueError("denominator='exclude_true' needs at least 2 "
                         f'classes; got {num_classes}')
    if embeds.dim() != 2 or embeds.shape[1] != proxies.shape[1]:
        raise ValueError(f'embeds must be Tensor[N, {proxies.shape[1]}]; got '
                         f'shape {tuple(embeds.shape)}')
    if labels.shape[0] != embeds.shape[0]:
        raise ValueError(f'one label per embedding needed; got '
                         f'{labels.shape[0]} labels, {embeds.shape[0]} '
                         'embeddings')
    check_labels(labels, num_classes)
    zero = embeds.sum() * 0. + proxies.sum() * 0.
    if embeds.shape[0] == 0:
        return zero
    labels = labels.long()
    neg_dist = -euclidean_distance(embeds, proxies.to(embeds.dtype))  # [N, C]
    pos = neg_dist.gather(1, labels[:, None]).squeeze(1)  # -d(x_i, p_c)
    if denominator == 'exclude_true':
        true_mask = torch.zeros_like(neg_dist, dtype=torch.bool)
        true_mask.scatter_(1, labels[:, None], True)
        neg_dist = neg_dist.masked_fill(true_mask, float('-inf'))
    per_proposal = torch.logsumexp(neg_dist, dim=1) - pos  # [N]
    if weights is None:
        return per_proposal.mean()
    weights = weights.to(per_proposal.dtype)
    if weights.shape != per_proposal.shape:
        raise ValueError(f'weights must be Tensor[{per_proposal.shape[0]}]; '
                         f'got shape {tuple(weights.shape)}')
    total = weights.sum()
    # a zero total weight gives 0 (still attached), never 0 / 0
    return torch.where(total > 0,
                       (weights * per_proposal).sum() / total.clamp(min=1e-12),
                       zero)


def select_pseudo_labels(cls_scores: Tensor,
                         num_classes: int,
                         score_thr: float = 0.5
                         ) -> Tuple[Tensor, Tensor, Tensor]:
    """Pseudo labels of unlabeled proposals from detached class scores.

    Args:
        cls_scores (Tensor[M, C + 1] | Tensor[M, C]): Class probabilities of
            every proposal (softmax scores with background last, as mmdet's
            ``Shared2FCBBoxHead``, or ``C`` sigmoid scores).
        num_classes (int): Number of foreground classes ``C``.
        score_thr (float): A proposal is kept when its best foreground score
            is ``> score_thr`` (0.5 in the paper).

    Returns:
        tuple: ``labels`` Tensor[M] (best foreground class), ``scores``
        Tensor[M] (its score, detached) and ``keep`` Tensor[M] bool.
    """
    if cls_scores.dim() != 2 or \
            cls_scores.shape[1] not in (num_classes, num_classes + 1):
        raise ValueError(f'cls_scores must be Tensor[M, {num_classes}] or '
                         f'Tensor[M, {num_classes + 1}]; got shape '
                         f'{tuple(cls_scores.shape)}')
    scores, labels = cls_scores.detach()[:, :num_classes].max(dim=1)
    return labels, scores, scores > score_thr


@MODELS.register_module()
class ProxyMetricLoss(nn.Module):
    """Proxy-based proposal alignment losses ``loss_pml`` / ``loss_pml_u``.

    Holds the learnable class proxies ``proxies`` (``Parameter[C, D]``); see
    :func:`proxy_nca_loss` for the formula and the two ``denominator``
    options.

    Args:
        num_classes (int): Number of foreground classes ``C``.
        embed_dim (int): Dimension ``D`` of the metric space.
        denominator (str): ``'exclude_true'`` (paper; unbounded below, can go
            negative) or ``'all'`` (softmax cross-entropy, ``>= 0``).
            Defaults to ``'exclude_true'``.
        score_thr (float): Unlabeled proposals whose ``weights_u`` (pseudo
            label confidence) is not ``> score_thr`` are ignored. Defaults to
            0.5 (the paper's threshold).
        loss_weight (float): Weight of both losses. Defaults to 1.0.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dim: int,
                 denominator: str = 'exclude_true',
                 score_thr: float = 0.5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if denominator not in DENOMINATORS:
            raise ValueError(f'denominator must be one of {DENOMINATORS}; '
                             f'got {denominator!r}')
        if denominator == 'exclude_true' and num_classes < 2:
            raise ValueError("denominator='exclude_true' needs at least 2 "
                             f'classes; got {num_classes}')
        self.num_classes = int(num_classes)
        self.embed_dim = int(embed_dim)
        self.denominator = denominator
        self.score_thr = float(score_thr)
        self.loss_weight = float(loss_weight)
        # roughly unit-norm random proxies
        self.proxies = nn.Parameter(
            torch.randn(self.num_classes, self.embed_dim) /
            self.embed_dim**0.5)

    def _foreground(self, labels: Tensor) -> Tensor:
        """Mask of non-background labels (background is ``C`` in mmdet)."""
        return labels != self.num_classes

    def forward(self,
                embeds_l: Tensor,
                labels_l: Tensor,
                embeds_u: Optional[Tensor] = None,
                labels_u: Optional[Tensor] = None,
                weights_u: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Weighted labeled and unlabeled proxy losses.

        Args:
            embeds_l (Tensor[N, D]): Embeddings of labeled proposals.
            labels_l (Tensor[N]): Their ground-truth classes in ``[0, C]``;
                background (``C``) proposals are dropped.
            embeds_u (Tensor[M, D], optional): Embeddings of unlabeled
                proposals.
            labels_u (Tensor[M], optional): Their pseudo labels in
                ``[0, C]`` (e.g. from :func:`select_pseudo_labels`);
                background is dropped. Required with ``embeds_u``.
            weights_u (Tensor[M], optional): Confidence of every pseudo
                label; only proposals with ``weights_u > score_thr`` enter
                (uniformly weighted). ``None`` keeps all.

        Returns:
            dict[str, Tensor]: ``loss_pml`` (gradient to ``embeds_l`` and the
            proxies) and ``loss_pml_u`` (gradient to ``embeds_u`` only; the
            proxies are detached). Empty inputs give 0 attached to the
            graph of the embeddings, never NaN.
        """
        fg_l = self._foreground(labels_l)
        loss_pml = proxy_nca_loss(embeds_l[fg_l], labels_l[fg_l],
                                  self.proxies, self.denominator)
        if embeds_u is None:
            # keeps the proxies out of this term's graph
            loss_pml_u = embeds_l.sum() * 0.
        else:
            if labels_u is None:
                raise ValueError('labels_u is required with embeds_u')
            keep = self._foreground(labels_u)
            if weights_u is not None:
                keep = keep & (weights_u > self.score_thr)
            loss_pml_u = proxy_nca_loss(embeds_u[keep], labels_u[keep],
                                        self.proxies.detach(),
                                        self.denominator)
        return dict(
            loss_pml=self.loss_weight * loss_pml,
            loss_pml_u=self.loss_weight * loss_pml_u)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, embed_dim={self.embed_dim}, '
                f'denominator={self.denominator!r}, '
                f'score_thr={self.score_thr}, loss_weight={self.loss_weight}')


__all__ = [
    'ProxyMetricLoss', 'proxy_nca_loss', 'euclidean_distance',
    'select_pseudo_labels'
]
