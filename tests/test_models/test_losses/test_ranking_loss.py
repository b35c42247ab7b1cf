"""RankingLoss against values computed by hand (Fei et al., ranking loss)."""
import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.losses import RankingLoss, ranking_loss


def test_hand_computed_value():
    det = torch.tensor([0.9, 0.5, 0.3])
    pcn = torch.tensor([0.2, 0.5, 0.8])
    # max(0, .2-.9+.05)=0, max(0, .5-.5+.05)=.05, max(0, .8-.3+.05)=.55
    assert ranking_loss(det, pcn, 0.05).item() == pytest.approx(0.6 / 3)
    loss = RankingLoss(margin=0.05, loss_weight=0.25)(det, pcn)
    assert loss.item() == pytest.approx(0.25 * 0.6 / 3)


def test_margin_edge():
    # exactly representable: s_c - s_d + margin == 0 -> no loss
    det = torch.tensor([0.5, 0.75])
    pcn = torch.tensor([0.25, 0.5])
    assert ranking_loss(det, pcn, margin=0.25).item() == 0.0
    # past the edge: each box violates the margin by 0.125
    assert ranking_loss(det, pcn, margin=0.375).item() == pytest.approx(
        (0.125 + 0.125) / 2)
    # equal scores: the loss is the margin
    same = torch.tensor([0.4, 0.6])
    assert ranking_loss(same, same, 0.05).item() == pytest.approx(0.05)
    # zero margin, equal scores: zero
    assert ranking_loss(same, same, 0.0).item() == 0.0


def test_gradient_only_on_violating_boxes_and_not_into_pcn():
    det = torch.tensor([0.9, 0.3, 0.2], requires_grad=True)
    pcn = torch.tensor([0.1, 0.8, 0.7], requires_grad=True)
    ranking_loss(det, pcn, 0.05).backward()
    # d/ds_d of mean(max(0, s_c - s_d + m)) = -1/N where active, 0 elsewhere
    assert torch.allclose(det.grad, torch.tensor([0., -1 / 3, -1 / 3]))
    assert pcn.grad is None


def test_empty_is_zero_and_backpropagates():
    logits = torch.zeros(4, requires_grad=True)
    det = logits[:0].sigmoid()
    loss = RankingLoss()(det, torch.zeros(0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(4))


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match='same shape'):
        ranking_loss(torch.zeros(3), torch.zeros(2))


def test_registered_in_mmdet():
    loss = MODELS.build(dict(type='RankingLoss', margin=0.1, loss_weight=2.))
    assert isinstance(loss, RankingLoss)
    assert (loss.margin, loss.loss_weight) == (0.1, 2.0)
