"""RCCLoss against values computed by hand (Fei et al., RCC loss)."""
import math

import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.losses import RCCLoss, rcc_loss, relation_matrix

A_ROI = torch.tensor([[1., 0.], [0., 1.], [1., 1.]])
A_PCN = torch.tensor([[1., 0., 0.], [1., 0., 0.], [0., 1., 0.]])
# G_R = [[1,0,1],[0,1,1],[1,1,2]], G_C = [[1,1,0],[1,1,0],[0,0,1]], rows
# L2-normalised; squared differences per row: 1, 1, 1/3 + (1 - 2/sqrt(6))^2.
EXPECTED = (2 + 1 / 3 + (1 - 2 / math.sqrt(6))**2) / 3


def test_relation_matrix_by_hand():
    r = relation_matrix(A_ROI)
    s2, s6 = math.sqrt(2), math.sqrt(6)
    expected = torch.tensor([[1 / s2, 0, 1 / s2], [0, 1 / s2, 1 / s2],
                             [1 / s6, 1 / s6, 2 / s6]])
    assert torch.allclose(r, expected, atol=1e-6)


def test_hand_computed_value():
    assert rcc_loss(A_ROI, A_PCN).item() == pytest.approx(EXPECTED, rel=1e-6)
    assert RCCLoss(loss_weight=2.)(A_ROI, A_PCN).item() == pytest.approx(
        2 * EXPECTED, rel=1e-6)


def test_feature_maps_are_average_pooled():
    # maps whose spatial mean is A_ROI / A_PCN (plus a zero-mean pattern)
    pattern = torch.tensor([[1., -1.], [-1., 1.]])
    roi = A_ROI[:, :, None, None] + 0.3 * pattern        # [3, 2, 2, 2]
    pcn = A_PCN[:, :, None, None].expand(-1, -1, 4, 4)    # [3, 3, 4, 4]
    assert rcc_loss(roi, pcn).item() == pytest.approx(EXPECTED, rel=1e-5)


def test_identical_features_give_zero():
    feats = torch.randn(6, 16, 7, 7)
    assert rcc_loss(feats, feats.clone()).item() == pytest.approx(0, abs=1e-6)
    # relations ignore a global scale of either feature set
    assert rcc_loss(feats, 3.5 * feats).item() == pytest.approx(0, abs=1e-6)


def test_single_box_and_empty():
    assert rcc_loss(torch.randn(1, 8), torch.randn(1, 4)).item() == 0.0
    roi = torch.randn(0, 8, 7, 7, requires_grad=True)
    loss = rcc_loss(roi, torch.zeros(0, 1))
    assert loss.item() == 0.0
    loss.backward()


def test_gradient_reaches_roi_features_only():
    roi = torch.randn(5, 8, 7, 7, requires_grad=True)
    pcn = torch.randn(5, 4, 14, 14, requires_grad=True)
    rcc_loss(roi, pcn).backward()
    assert roi.grad is not None and roi.grad.abs().sum() > 0
    assert pcn.grad is None


def test_mismatched_rows_are_reported():
    with pytest.raises(ValueError, match='one PCN feature per ROI'):
        rcc_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r'Tensor\[N, C, H, W\]'):
        rcc_loss(torch.randn(3, 4, 2), torch.randn(3, 4))


def test_registered_in_mmdet():
    assert isinstance(MODELS.build(dict(type='RCCLoss')), RCCLoss)
