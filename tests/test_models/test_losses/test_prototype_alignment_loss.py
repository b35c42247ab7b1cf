"""PrototypeAlignmentLoss and the sigmoid ramp-up against values computed by
hand (Chai et al., ISBI 2022, eqs. (7), (8))."""
import math

import pytest
import torch

from cervdet.models.layers import class_prototypes, soft_class_prototypes
from cervdet.models.losses import (PrototypeAlignmentLoss,
                                   prototype_alignment_loss, sigmoid_rampup)
from mmdet.registry import MODELS

# batch: classes 0, 1 (2 absent); bank: classes 0, 2 (1 absent)
PROTOS = torch.tensor([[0., 0.], [1., 0.], [0., 0.]])
PRESENT = torch.tensor([True, True, False])
BANK = torch.tensor([[0., 0.5], [0., 0.], [0., 2.]])
BANK_PRESENT = torch.tensor([True, False, True])
# intra: only class 0, d = 0.5; inter: c=0 vs k=2 (d = 2), c=1 vs k=0
# (d = sqrt(1.25)) and k=2 (d = sqrt(5)).


def expected(margin):
    inter_0 = max(0., margin - 2)
    inter_1 = (max(0., margin - math.sqrt(1.25)) +
               max(0., margin - math.sqrt(5))) / 2
    return 0.5 + (inter_0 + inter_1) / 2


@pytest.mark.parametrize('margin', [1.0, 3.0])
def test_hand_computed_value(margin):
    value = prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                     margin)
    assert value.item() == pytest.approx(expected(margin), rel=1e-6)
    module = PrototypeAlignmentLoss(margin=margin, loss_weight=2.)
    assert module(PROTOS, PRESENT, BANK, BANK_PRESENT).item() == \
        pytest.approx(2 * expected(margin), rel=1e-6)


def test_gradient_reaches_present_protos_only():
    protos = PROTOS.clone().requires_grad_()
    bank = BANK.clone().requires_grad_()
    prototype_alignment_loss(protos, PRESENT, bank, BANK_PRESENT,
                             3.).backward()
    assert protos.grad[:2].abs().sum(1).gt(0).all()
    assert (protos.grad[2] == 0).all()
    assert bank.grad is None


def test_nothing_valid_gives_attached_zero():
    protos = torch.randn(3, 2, requires_grad=True)
    none = torch.zeros(3, dtype=torch.bool)
    for present, bank_present in [(none, BANK_PRESENT), (PRESENT, none),
                                  (none, none)]:
        value = prototype_alignment_loss(protos, present, BANK, bank_present)
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.isfinite(protos.grad).all()
    # one class in both, no other bank class: intra term only
    one = torch.tensor([True, False, False])
    value = prototype_alignment_loss(PROTOS, one, BANK, one)
    assert value.item() == pytest.approx(0.5)
    # identical batch and bank prototype: d = 0, finite gradient
    protos = BANK.clone().requires_grad_()
    value = prototype_alignment_loss(protos, one, BANK, one)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(protos.grad).all()


def test_class_prototypes_by_hand():
    embeds = torch.tensor([[0., 0.], [2., 0.], [0., 3.]], requires_grad=True)
    labels = torch.tensor([0, 0, 2])
    protos, present = class_prototypes(embeds, labels, 3)
    assert torch.allclose(protos, torch.tensor([[1., 0.], [0., 0.], [0.,
                                                                     3.]]))
    assert present.tolist() == [True, False, True]
    # confidence-guided: score-weighted means; zero total weight = absent
    protos, present = class_prototypes(embeds, labels, 3,
                                       torch.tensor([1., 3., 0.]))
    assert torch.allclose(protos, torch.tensor([[1.5, 0.], [0., 0.],
                                                [0., 0.]]))
    assert present.tolist() == [True, False, False]
    protos.sum().backward()
    assert torch.allclose(embeds.grad, torch.tensor([[.25, .25], [.75, .75],
                                                     [0., 0.]]))
    protos, present = class_prototypes(torch.zeros(0, 2),
                                       torch.zeros(0, dtype=torch.long), 3)
    assert protos.shape == (3, 2) and not present.any()
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        class_prototypes(embeds, torch.tensor([0, 3, 1]), 3)


def test_soft_class_prototypes_by_hand():
    embeds = torch.tensor([[0., 0.], [2., 0.], [0., 3.]])
    scores = torch.tensor([[1., 0.], [0.5, 0.], [0., 0.]])
    protos, present = soft_class_prototypes(embeds, scores)
    assert torch.allclose(protos, torch.tensor([[2 / 3, 0.], [0., 0.]]))
    assert present.tolist() == [True, False]


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == 1.0
    assert sigmoid_rampup(200, 100) == 1.0
    assert sigmoid_rampup(-1, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(3, 0) == 1.0


def test_registered_in_mmdet():
    loss = MODELS.build(dict(type='PrototypeAlignmentLoss', margin=2.))
    assert isinstance(loss, PrototypeAlignmentLoss) and loss.margin == 2.
