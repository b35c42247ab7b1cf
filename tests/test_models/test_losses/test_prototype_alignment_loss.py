"""PrototypeAlignmentLoss and the sigmoid ramp-up against values computed by
hand from Chai et al. (ISBI 2022), Eq. (5)-(8): the three terms
L_intra(P^M, P^cg) + L_inter(P^M, P^cg) + L_inter(P^cg, P^cg), normalised by
C and C (C - 1)."""
import math

import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.layers import class_prototypes, soft_class_prototypes
from cervdet.models.losses import (
    PrototypeAlignmentLoss,
    prototype_alignment_loss,
    prototype_alignment_terms,
    prototype_inter_loss,
    prototype_intra_loss,
    sigmoid_rampup,
)

C = 3
# batch P^cg: classes 0, 1 (2 absent); bank P^M: classes 0, 2 (1 absent)
PROTOS = torch.tensor([[0., 0.], [1., 0.], [0., 0.]])
PRESENT = torch.tensor([True, True, False])
BANK = torch.tensor([[0., 0.5], [0., 0.], [0., 2.]])
BANK_PRESENT = torch.tensor([True, False, True])


def hand_terms(margin):
    """Eq. (5)-(6) written out for the fixture: sums and the number of
    valid classes / ordered pairs."""
    # Eq. (5): only class 0 has both prototypes, Phi = 0.5
    intra = (0.5, 1)
    # Eq. (6), L_inter(P^M, P^cg): c in bank {0, 2}, k in batch {0, 1},
    # k != c: (0, 1) sqrt(1.25), (2, 0) 2, (2, 1) sqrt(5)
    dists = [math.sqrt(1.25), 2.0, math.sqrt(5.0)]
    inter_bank = (sum(max(0., margin - d) for d in dists), 3)
    # Eq. (6), L_inter(P^cg, P^cg): (0, 1) and (1, 0), Phi = 1
    inter_batch = (2 * max(0., margin - 1.0), 2)
    return intra, inter_bank, inter_batch


@pytest.mark.parametrize('margin', [1.0, 3.0])
def test_three_terms_by_hand_paper_normalisation(margin):
    intra, inter_bank, inter_batch = hand_terms(margin)
    # the paper divides by C and C (C - 1) = 3 and 6
    expected = dict(intra=intra[0] / C, inter_bank=inter_bank[0] / 6,
                    inter_batch=inter_batch[0] / 6)
    terms = prototype_alignment_terms(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                      margin)
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value, rel=1e-6), key
    total = sum(expected.values())
    assert prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                    margin).item() == pytest.approx(
                                        total, rel=1e-6)
    module = PrototypeAlignmentLoss(margin=margin, loss_weight=2.)
    assert module(PROTOS, PRESENT, BANK, BANK_PRESENT).item() == \
        pytest.approx(2 * total, rel=1e-6)


def test_margin_3_values_written_out():
    """The same numbers as literals (no helper): m = 3."""
    value = prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT, 3.)
    intra = 0.5 / 3
    inter_bank = ((3 - math.sqrt(1.25)) + (3 - 2) + (3 - math.sqrt(5))) / 6
    inter_batch = (2 + 2) / 6
    assert value.item() == pytest.approx(intra + inter_bank + inter_batch,
                                         rel=1e-6)


@pytest.mark.parametrize('margin', [1.0, 3.0])
def test_valid_normalisation_option(margin):
    intra, inter_bank, inter_batch = hand_terms(margin)
    expected = intra[0] / intra[1] + inter_bank[0] / inter_bank[1] + \
        inter_batch[0] / inter_batch[1]
    value = prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                     margin, normalize='valid')
    assert value.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match='normalize'):
        PrototypeAlignmentLoss(normalize='mean')


def test_without_batch_inter_is_the_two_term_ablation():
    with_term = prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                         3.)
    without = prototype_alignment_loss(PROTOS, PRESENT, BANK, BANK_PRESENT,
                                       3., with_batch_inter=False)
    assert (with_term - without).item() == pytest.approx(4 / 6, rel=1e-6)


def test_intra_and_inter_functions_alone():
    a = torch.tensor([[0., 0.], [3., 4.]])
    b = torch.tensor([[0., 1.], [3., 4.]])
    both = torch.tensor([True, True])
    # Eq. (5): (1 + 0) / 2
    assert prototype_intra_loss(a, both, b, both).item() == pytest.approx(.5)
    # Eq. (6), m = 6: Phi(a0, b1) = 5, Phi(a1, b0) = sqrt(9 + 9)
    value = prototype_inter_loss(a, both, b, both, margin=6.)
    assert value.item() == pytest.approx(
        ((6 - 5) + (6 - math.sqrt(18))) / 2, rel=1e-6)
    # symmetric in its two arguments
    assert prototype_inter_loss(b, both, a, both, margin=6.).item() == \
        pytest.approx(value.item(), rel=1e-6)
    # one class: no pair, 0
    one = torch.ones(1, dtype=torch.bool)
    assert prototype_inter_loss(a[:1], one, b[:1], one).item() == 0.0


def test_gradients():
    protos = PROTOS.clone().requires_grad_()
    bank = BANK.clone().requires_grad_()
    prototype_alignment_loss(protos, PRESENT, bank, BANK_PRESENT,
                             3.).backward()
    assert protos.grad[:2].abs().sum(1).gt(0).all()
    assert (protos.grad[2] == 0).all()  # absent class
    assert bank.grad is None  # the bank is a constant
    # the within-batch term alone pushes the two prototypes apart
    protos = PROTOS.clone().requires_grad_()
    terms = prototype_alignment_terms(protos, PRESENT, BANK,
                                      torch.zeros(3, dtype=torch.bool), 3.)
    terms['inter_batch'].backward()
    moved = PROTOS - 0.1 * protos.grad
    assert (moved[0] - moved[1]).norm() > (PROTOS[0] - PROTOS[1]).norm()


def test_nothing_valid_gives_attached_zero():
    protos = torch.randn(3, 2, requires_grad=True)
    none = torch.zeros(3, dtype=torch.bool)
    for normalize in ('num_classes', 'valid'):
        for present, bank_present in [(none, BANK_PRESENT), (none, none)]:
            value = prototype_alignment_loss(protos, present, BANK,
                                             bank_present,
                                             normalize=normalize)
            assert value.item() == 0.0 and value.requires_grad
            value.backward()
            assert torch.isfinite(protos.grad).all()
    # one class in both, no other class anywhere: intra term only, / C
    one = torch.tensor([True, False, False])
    value = prototype_alignment_loss(PROTOS, one, BANK, one)
    assert value.item() == pytest.approx(0.5 / 3)
    # identical batch and bank prototype: Phi = 0, finite gradient
    protos = BANK.clone().requires_grad_()
    value = prototype_alignment_loss(protos, one, BANK, one)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(protos.grad).all()


def test_class_prototypes_by_hand():
    """Eq. (4): P^gg plain means, P^cg score-weighted means."""
    embeds = torch.tensor([[0., 0.], [2., 0.], [0., 3.]], requires_grad=True)
    labels = torch.tensor([0, 0, 2])
    protos, present = class_prototypes(embeds, labels, 3)
    assert torch.allclose(protos, torch.tensor([[1., 0.], [0., 0.], [0.,
                                                                     3.]]))
    assert present.tolist() == [True, False, True]
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
    assert loss.normalize == 'num_classes' and loss.with_batch_inter
