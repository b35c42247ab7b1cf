"""Tests of the attention-based cell pseudo labels and L_cell."""
import math

import pytest
import torch
import torch.nn.functional as F

from cervdet.models.layers import (
    cell_branch_loss,
    cell_pseudo_targets,
    select_top_least,
)

NAMES = ['NILM', 'LSIL', 'HSIL']
# 10 valid cells, ratio 0.2 -> 2 top (cells 3, 7) and 2 least (cells 0, 5)
SCORES = torch.tensor([[.01, .10, .08, .30, .07, .02, .09, .20, .06, .07,
                        .5, .5]])
MASK = torch.tensor([[True] * 10 + [False] * 2])
TOP, LEAST = [3, 7], [0, 5]


def _targets(label, rule='shi', names=NAMES):
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


# -- the paper's rules 1-3 (Shi et al., Sec. 2.4), rule='shi' -------------
def test_shi_rule1_nilm_roi_all_cells_are_nilm_positives():
    t = _targets(0, rule='shi')
    # rule 1: every valid cell (not only the top / least ones) -> NILM 1;
    # the LSIL and HSIL branches get nothing
    assert t[:10].tolist() == [[1, -1, -1]] * 10
    assert (t[10:] == -1).all()  # padding


def test_shi_rule2_lsil_roi():
    t = _targets(1, rule='shi')
    for i in TOP:  # LSIL positive, NILM negative, HSIL unused
        assert t[i].tolist() == [0, 1, -1]
    for i in LEAST:  # LSIL negative only
        assert t[i].tolist() == [-1, 0, -1]
    _unused_elsewhere(t)


def test_shi_rule3_hsil_roi():
    t = _targets(2, rule='shi')
    for i in TOP:  # HSIL positive, NILM and LSIL negative
        assert t[i].tolist() == [0, 0, 1]
    for i in LEAST:  # HSIL negative only
        assert t[i].tolist() == [-1, -1, 0]
    _unused_elsewhere(t)


def test_shi_hand_made_bag_batch_and_class_order():
    """A hand-made batch of three ROIs (NILM with 3 cells + padding, LSIL
    and HSIL with 10 cells each), classes listed HSIL, NILM, LSIL: N = 10 %
    of 10 cells = 1."""
    names = ['HSIL', 'NILM', 'LSIL']  # index: HSIL 0, NILM 1, LSIL 2
    scores = torch.tensor([
        [.5, .3, .2] + [0.] * 7,
        [.05, .02, .30, .08, .07, .01, .09, .20, .10, .08],
        [.10, .12, .06, .04, .50, .03, .05, .02, .03, .05],
    ])
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[0, 3:] = False
    labels = torch.tensor([1, 2, 0])  # NILM, LSIL, HSIL ROIs
    t = cell_pseudo_targets(scores, mask, labels, 3, ratio=0.1, rule='shi',
                            class_names=names)
    u = [-1, -1, -1]
    # NILM ROI: cells 0-2 NILM positives (column 1), padding unused
    assert t[0].tolist() == [[-1, 1, -1]] * 3 + [u] * 7
    # LSIL ROI: top cell 2 -> LSIL 1, NILM 0; least cell 5 -> LSIL 0
    exp = [u] * 10
    exp[2], exp[5] = [-1, 0, 1], [-1, -1, 0]
    assert t[1].tolist() == exp
    # HSIL ROI: top cell 4 -> HSIL 1, NILM 0, LSIL 0; least cell 7 -> HSIL 0
    exp = [u] * 10
    exp[4], exp[7] = [1, 0, 0], [0, -1, -1]
    assert t[2].tolist() == exp


def test_shi_single_cell_rois():
    t = cell_pseudo_targets(torch.tensor([[.3, 0.], [.3, 0.]]),
                            torch.tensor([[True, False], [True, False]]),
                            torch.tensor([2, 0]), 3, rule='shi',
                            class_names=NAMES)
    assert t[0].tolist() == [[0, 0, 1], [-1, -1, -1]]  # HSIL: top only
    assert t[1].tolist() == [[1, -1, -1], [-1, -1, -1]]  # NILM


# -- the earlier reading, now an option --------------------------------------
def test_bethesda_onehot_rois():
    t = _targets(0, rule='bethesda_onehot')
    for i in TOP + LEAST:  # all selected cells are normal
        assert t[i].tolist() == [1, 0, 0]
    _unused_elsewhere(t)
    t = _targets(1, rule='bethesda_onehot')
    for i in TOP:
        assert t[i].tolist() == [0, 1, 0]
    for i in LEAST:
        assert t[i].tolist() == [1, 0, 0]
    # classes HSIL, NILM, LSIL: label 2 is an LSIL ROI
    t = _targets(2, rule='bethesda_onehot', names=['HSIL', 'NILM', 'LSIL'])
    assert t[3].tolist() == [0, 0, 1]  # top: LSIL
    assert t[0].tolist() == [0, 1, 0]  # least: NILM


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
        _targets(0, rule='shi', names=['NILM', 'ASC-US', 'HSIL'])
    with pytest.raises(ValueError, match="now called 'bethesda_onehot'"):
        _targets(0, rule='bethesda')
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
    assert cell_branch_loss(logits, targets, 'active').item() == \
        pytest.approx((ce0 + ce1) / 2, rel=1e-6)
    loss.backward()
    assert (logits.grad[0, 0, 1] == 0).all()  # unused entry


def test_cell_branch_loss_empty_and_shape_error():
    logits = torch.randn(1, 2, 3, 2, requires_grad=True)
    loss = cell_branch_loss(logits, torch.full((1, 2, 3), -1))
    assert loss.item() == 0. and loss.requires_grad
    # paper: L_cell = (L_NILM + L_LSIL + L_HSIL) / 3, an empty branch
    # contributes 0; 'active' leaves it out of the mean
    targets = torch.tensor([[[1, -1, -1], [-1, -1, -1]]])
    ref = F.cross_entropy(logits[0, 0, 0][None], torch.tensor([1]))
    assert torch.allclose(cell_branch_loss(logits, targets), ref / 3)
    assert torch.allclose(cell_branch_loss(logits, targets, 'active'), ref)
    with pytest.raises(ValueError, match='branch_average'):
        cell_branch_loss(logits, targets, 'sum')
    with pytest.raises(ValueError, match='Tensor\\[B, N, C, 2\\]'):
        cell_branch_loss(torch.randn(1, 2, 3), targets)
