"""ROI-correlation consistency (RCC) loss of the PCN distillation (Fei et al.,
MICCAI 2023).

The detector's ROI features of the top-K suspicious boxes and the frozen PCN's
local-scale features of the same boxes are each turned into a case-wise
relation matrix over all ``N = B*K`` boxes of the batch; the loss pulls the
detector's relations towards the PCN's.
"""
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


def pool_features(feats: Tensor) -> Tensor:
    """Average-pool features over space.

    Args:
        feats (Tensor[N, C, H, W] | Tensor[N, C]): Per-box features.

    Returns:
        Tensor[N, C]: Spatial means (``Tensor[N, C]`` inputs are returned
        unchanged).
    """
    if feats.dim() == 4:
        return feats.mean(dim=(2, 3))
    if feats.dim() == 2:
        return feats
    raise ValueError('features must be Tensor[N, C, H, W] or Tensor[N, C]; '
                     f'got shape {tuple(feats.shape)}')


def relation_matrix(feats: Tensor, eps: float = 1e-12) -> Tensor:
    """Row-normalised case-wise Gram matrix of a set of box features.

    Fei et al. (2023), RCC relation: ``G = A A^T`` over the ``N`` boxes, then
    every row of ``G`` is divided by its L2 norm, ``R = G / ||G||_row``.

    Args:
        feats (Tensor[N, C, H, W] | Tensor[N, C]): Box features, pooled over
            space first (:func:`pool_features`).
        eps (float): Lower bound of a row norm (all-zero rows stay zero).

    Returns:
        Tensor[N, N]: Relation matrix ``R``.
    """
    a = pool_features(feats)  # A: average pooling over space
    gram = a @ a.t()  # Eq. 3 / 5: G = A A^T over all boxes of the batch
    return F.normalize(gram, p=2, dim=1, eps=eps)  # Eq. 4 / 6: rows / L2


def rcc_loss(roi_feats: Tensor, pcn_feats: Tensor) -> Tensor:
    """ROI-correlation consistency loss between detector and PCN relations.

    Fei et al. (2023), RCC loss:
    ``L_rcc = sum((R_C - R_R)^2) / N`` with ``R_R`` the relation matrix of the
    detector's ROI features and ``R_C`` that of the PCN's local-scale
    features (:func:`relation_matrix`).

    Args:
        roi_feats (Tensor[N, C, H, W] | Tensor[N, C]): Detector ROI features
            (e.g. ``Tensor[N, 256, 7, 7]``), with gradient.
        pcn_feats (Tensor[N, C2, H2, W2] | Tensor[N, C2]): PCN local-scale
            features of the same boxes in the same order (e.g.
            ``Tensor[N, 256, 56, 56]``); treated as constants.

    Returns:
        Tensor: Scalar loss; 0 (still attached to ``roi_feats``'s graph) when
        ``N == 0``.
    """
    n = roi_feats.shape[0]
    if pcn_feats.shape[0] != n:
        raise ValueError('rcc_loss needs one PCN feature per ROI feature; got '
                         f'{n} ROI and {pcn_feats.shape[0]} PCN rows')
    if n == 0:
        return pool_features(roi_feats).sum() * 0.
    relation_roi = relation_matrix(roi_feats)
    relation_pcn = relation_matrix(pcn_feats.detach().to(roi_feats.dtype))
    # Eq. 7: sum (1 / BK) ||R^C - R^R||_2^2, BK = n selected boxes
    return ((relation_pcn - relation_roi)**2).sum() / n


@MODELS.register_module()
class RCCLoss(nn.Module):
    """ROI-correlation consistency loss; see :func:`rcc_loss`.

    Args:
        loss_weight (float): Weight of the loss (``beta`` of the paper's total
            loss, 1.0 in its configs). Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, roi_feats: Tensor, pcn_feats: Tensor) -> Tensor:
        """Weighted RCC loss.

        Args:
            roi_feats (Tensor[N, C, H, W] | Tensor[N, C]): Detector ROI
                features; ``N = B*K`` boxes of the whole batch.
            pcn_feats (Tensor[N, C2, H2, W2] | Tensor[N, C2]): PCN local-scale
                features of the same boxes.

        Returns:
            Tensor: Scalar ``loss_weight * rcc_loss(...)``.
        """
        return self.loss_weight * rcc_loss(roi_feats, pcn_feats)

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'


__all__ = ['RCCLoss', 'rcc_loss', 'relation_matrix', 'pool_features']
