"""Tests of the attention-based cell pseudo labels and L_cell."""
import math

import pytest
import torch
import torch.nn.functional as F

from cervdet.models.layers import (cell_branch_loss, cell_pseudo_targets,
                                   select_top_least)

NAMES = ['NILM', 'LSIL', 'HSIL']
# 10 valid cells, ratio 0.2 -> 2 top (cells 3, 7) and 2 least (cells 0, 5)
SCORES = torch.tensor([[.01, .10, .08, .30, .07, .02, .09, .20, .06, .07,
                        .5, .5]])
MASK = torch.tensor([[True] * 10 + [False] * 2])
TOP, LEAST = [3, 7], [0, 5]


def _targets(label, rule='bethesda', names=NAMES):
    return cell_pseudo_targets(SCORES, MASK, torch.tensor([label]), 3,
                               ratio=0.2, rule=rule, class_names=names)[0]


def _unused_elsewhere(t):
    others = [i for i in range(12) if i not in TOP + LEAST]
    assert (t[others] == -1).all()  # unselected and padding cells


def test_select_top_least_counts_and_padding():
    top, least = select_top_least(SCORES, MASK, ratio=0.2)
    assert torch.nonzero(top[0]).flatten().tolist() == TOP
    assert torch.nonzero(least[0]).flatten().tolist() == LEAST
    # padding has the highest scores but is never selected
    assert not top[0, 10:].any() and not least[0, 10:].any()


def test_select_few_cells():
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()
    scores = torch.tensor([[.2, 9., 9.], [.3, .7, 9.], [.5, .5, .5]])
    top, least = select_top_least(scores, mask, ratio=0.1)
    # n_valid = 1: only the top set
    assert top[0].tolist() == [True, False, False] and not least[0].any()
    # n_valid = 2: one top, one least
    assert top[1].tolist() == [False, True, False]
    assert least[1].tolist() == [True, False, False]
    # ties: stable ranking, disjoint sets (N_sel capped at n_valid // 2)
    assert top[2].tolist() == [True, False, False]
    assert least[2].tolist() == [False, False, True]
    assert not (top & least).any()
    # a large ratio is capped at n_valid // 2
    top, least = select_top_least(scores, mask, ratio=1.0)
    assert top.sum(1).tolist() == [1, 1, 1]
    assert least.sum(1).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match='ratio'):
        select_top_least(scores, mask, ratio=0.)


def test_bethesda_nilm_roi():
    t = _targets(0)
    for i in TOP + LEAST:  # all selected cells are normal
        assert t[i].tolist() == [1, 0, 0]
    _unused_elsewhere(t)


def test_bethesda_lsil_roi():
    t = _targets(1)
    for i in TOP:
        assert t[i].tolist() == [0, 1, 0]
    for i in LEAST:
        assert t[i].tolist() == [1, 0, 0]
    _unused_elsewhere(t)


def test_bethesda_hsil_roi():
    t = _targets(2)
    for i in TOP:
        assert t[i].tolist() == [0, 0, 1]
    for i in LEAST:
        assert t[i].tolist() == [1, 0, 0]
    _unused_elsewhere(t)


def test_bethesda_other_order_and_single_cell():
    names = ['HSIL', 'NILM', 'LSIL']  # NILM is index 1 here
    t = _targets(0, names=names)  # an HSIL ROI
    assert t[3].tolist() == [1, 0, 0] and t[0].tolist() == [0, 1, 0]
    t = cell_pseudo_targets(torch.tensor([[.3, 0.]]),
                            torch.tensor([[True, False]]),
                            torch.tensor([1]), 3, rule='bethesda',
                            class_names=NAMES)[0]
    assert t.tolist() == [[0, 1, 0], [-1, -1, -1]]


def test_clam_rule():
    t = _targets(1, rule='clam', names=None)
    for i in TOP:  # in-class positive, out-of-class negative
        assert t[i].tolist() == [0, 1, 0]
    for i in LEAST:  # in-class negative only
        assert t[i].tolist() == [-1, 0, -1]
    _unused_elsewhere(t)
    # n_valid = 2, four classes
    t = cell_pseudo_targets(torch.tensor([[.4, .6]]), torch.ones(1, 2).bool(),
                            torch.tensor([3]), 4, rule='clam')[0]
    assert t.tolist() == [[-1, -1, -1, 0], [0, 0, 0, 1]]


def test_rule_errors():
    with pytest.raises(ValueError, match='exactly NILM, LSIL'):
        _targets(0, names=['NILM', 'ASC-US', 'HSIL'])
    with pytest.raises(ValueError, match='rule must be'):
        _targets(0, rule='other')
    with pytest.raises(ValueError, match='roi_labels'):
        _targets(3)


def test_cell_branch_loss_hand_computed():
    # 1 ROI, 2 cells, 2 classes
    logits = torch.tensor([[[[0., 1.], [2., 0.]],
                            [[0., 0.], [1., 3.]]]], requires_grad=True)
    targets = torch.tensor([[[1, -1], [0, 1]]])
    # branch 0: cells 0 (target 1) and 1 (target 0); branch 1: cell 1 (1)
    ce0 = (-math.log(math.e / (1 + math.e)) + math.log(2.)) / 2
    ce1 = -math.log(math.exp(3.) / (math.exp(1.) + math.exp(3.)))
    loss = cell_branch_loss(logits, targets)
    assert loss.item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)
    loss.backward()
    assert (logits.grad[0, 0, 1] == 0).all()  # unused entry


def test_cell_branch_loss_empty_and_shape_error():
    logits = torch.randn(1, 2, 3, 2, requires_grad=True)
    loss = cell_branch_loss(logits, torch.full((1, 2, 3), -1))
    assert loss.item() == 0. and loss.requires_grad
    # a branch without any selected cell is left out of the mean
    targets = torch.tensor([[[1, -1, -1], [-1, -1, -1]]])
    ref = F.cross_entropy(logits[0, 0, 0][None], torch.tensor([1]))
    assert torch.allclose(cell_branch_loss(logits, targets), ref)
    with pytest.raises(ValueError, match='Tensor\\[B, N, C, 2\\]'):
        cell_branch_loss(torch.randn(1, 2, 3), targets)
