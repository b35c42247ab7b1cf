"""Classification ranking loss of the PCN distillation (Fei et al., MICCAI 2023).

The frozen Patch Correction Network (PCN) re-scores the detector's top-K
suspicious boxes; the ranking loss asks the detector's score of every such box
to be at least the PCN's refined score plus a margin.
"""
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor


def ranking_loss(det_scores: Tensor, pcn_scores: Tensor,
                 margin: float = 0.05) -> Tensor:
    """Hinge ranking loss between detector and PCN scores, averaged over boxes.

    Fei et al. (2023), classification ranking loss:
    ``L_rank = 1/N * sum_i max(0, s_c^i - s_d^i + margin)``.

    Args:
        det_scores (Tensor[N]): Detector scores ``s_d`` (probabilities of the
            box's class, with gradient).
        pcn_scores (Tensor[N]): Refined PCN scores ``s_c`` of the same boxes in
            the same order (treated as constants: no gradient flows into
            them).
        margin (float): Margin of the hinge. Defaults to 0.05.

    Returns:
        Tensor: Scalar loss; 0 (still attached to ``det_scores``'s graph)
        when ``N == 0``.
    """
    if det_scores.shape != pcn_scores.shape or det_scores.dim() != 1:
        raise ValueError('ranking_loss needs det_scores and pcn_scores of the '
                         f'same shape [N]; got {tuple(det_scores.shape)} and '
                         f'{tuple(pcn_scores.shape)}')
    if det_scores.numel() == 0:
        return det_scores.sum() * 0.
    # Eq. 2: max{0, s_c - s_d + margin} per box; averaged over the boxes
    # (the paper does not say how boxes are aggregated)
    hinge = (pcn_scores.detach().to(det_scores.dtype) - det_scores +
             margin).clamp(min=0)
    return hinge.mean()


@MODELS.register_module()
class RankingLoss(nn.Module):
    """Ranking loss ``mean(max(0, s_c - s_d + margin))``; see :func:`ranking_loss`.

    Args:
        margin (float): Hinge margin. Defaults to 0.05 (the paper's value).
        loss_weight (float): Weight of the loss (``alpha`` of the paper's total
            loss, 0.25 in its configs). Defaults to 1.0.
    """

    def __init__(self, margin: float = 0.05, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.margin = float(margin)
        self.loss_weight = float(loss_weight)

    def forward(self, det_scores: Tensor, pcn_scores: Tensor) -> Tensor:
        """Weighted ranking loss.

        Args:
            det_scores (Tensor[N]): Detector scores of the selected boxes.
            pcn_scores (Tensor[N]): PCN refined scores of the same boxes.

        Returns:
            Tensor: Scalar ``loss_weight * ranking_loss(...)``.
        """
        return self.loss_weight * ranking_loss(det_scores, pcn_scores,
                                               self.margin)

    def extra_repr(self) -> str:
        return f'margin={self.margin}, loss_weight={self.loss_weight}'


__all__ = ['RankingLoss', 'ranking_loss']
