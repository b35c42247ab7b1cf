"""OICR scores, pseudo labels and losses against values computed by hand."""
import math

import pytest
import torch

from cervdet.models.layers.oicr_pseudo_labels import (
    assign_pseudo_labels,
    mil_image_scores,
    mil_loss,
    mine_pseudo_boxes,
    oicr_pseudo_labels,
    segment_softmax,
    weighted_cross_entropy,
)

# 3 regions x 2 classes; logits are logs so the softmaxes are ratios:
# over regions (columns of DET): [1, 1, 2] / 4 and [2, 1, 1] / 4;
# over classes (rows of CLS): [1, 3] / 4, [1, 1] / 2, [3, 1] / 4.
DET = torch.tensor([[1., 2.], [1., 1.], [2., 1.]]).log()
CLS = torch.tensor([[1., 3.], [1., 1.], [3., 1.]]).log()
REGION = torch.tensor([[1 / 16, 3 / 8], [1 / 8, 1 / 8], [3 / 8, 1 / 16]])
IMAGE = torch.tensor([9 / 16, 9 / 16])


def test_mil_scores_by_hand():
    region, image = mil_image_scores(DET, CLS)
    assert torch.allclose(region, REGION, atol=1e-6)
    assert torch.allclose(image, IMAGE, atol=1e-6)


def test_mil_bce_by_hand():
    labels = torch.tensor([1., 0.])
    expected = -(math.log(9 / 16) + math.log(1 - 9 / 16)) / 2
    assert mil_loss(IMAGE, labels).item() == pytest.approx(expected, rel=1e-6)
    # clamped: a certain wrong answer is finite
    loss = mil_loss(torch.tensor([0., 1.]), labels, eps=1e-6)
    assert loss.item() == pytest.approx(-math.log(1e-6), rel=1e-3)
    # negative image: all-zero target
    neg = mil_loss(IMAGE, torch.zeros(2)).item()
    assert neg == pytest.approx(-math.log(7 / 16), rel=1e-6)


def test_batched_mil_scores_match_single_images():
    other_det, other_cls = torch.randn(5, 2), torch.randn(5, 2)
    det = torch.cat([other_det[:2], DET, other_det[2:]])
    cls = torch.cat([other_cls[:2], CLS, other_cls[2:]])
    batch_inds = torch.tensor([1, 1, 0, 0, 0, 1, 1, 1])  # unsorted rows
    region, image = mil_image_scores(det, cls, batch_inds, num_images=3)
    assert torch.allclose(region[2:5], REGION, atol=1e-6)
    assert torch.allclose(image[0], IMAGE, atol=1e-6)
    ref_region, ref_image = mil_image_scores(other_det, other_cls)
    assert torch.allclose(torch.cat([region[:2], region[5:]]), ref_region,
                          atol=1e-6)
    assert torch.allclose(image[1], ref_image, atol=1e-6)
    assert torch.equal(image[2], torch.zeros(2))  # no region
    # the segment softmax is stable for large logits
    big = segment_softmax(torch.tensor([[1000.], [1001.]]),
                          torch.tensor([0, 0]), 1)
    assert torch.isfinite(big).all()
    assert big.sum().item() == pytest.approx(1.)


def test_weighted_cross_entropy_by_hand():
    logits = torch.zeros(2, 3)  # uniform: -log p = log 3
    labels = torch.tensor([0, 2])
    weights = torch.tensor([0.5, 1.0])
    expected = (0.5 + 1.0) * math.log(3) / 2
    loss = weighted_cross_entropy(logits, labels, weights)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    logits = torch.tensor([[2., 0., 0.], [0., 1., 0.]])
    lse0, lse1 = math.log(math.e**2 + 2), math.log(math.e + 2)
    expected = (0.5 * (lse0 - 2) + 1.0 * lse1) / 4
    loss = weighted_cross_entropy(logits, labels, weights, avg_factor=4)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    empty = torch.zeros(0, 3, requires_grad=True)
    loss = weighted_cross_entropy(empty, labels[:0], weights[:0])
    loss.backward()
    assert loss.item() == 0.


# Proposals: P0 is the top box of class 0; P1 overlaps it with IoU exactly
# 0.5 (100 / 200), P2 with IoU 0.45 (90 / 200); P3 is the top box of class 1;
# P4 overlaps nothing.
PROPS = torch.tensor([[0., 0., 10., 20.], [0., 0., 10., 10.],
                      [0., 0., 9., 10.], [50., 50., 60., 60.],
                      [100., 100., 110., 110.]])
SCORES = torch.tensor([[0.8, 0.0], [0.1, 0.0], [0.05, 0.1], [0.0, 0.6],
                       [0.05, 0.3]])


def test_top1_iou_edge_and_several_classes():
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 1.]))
    assert res.pseudo_labels.tolist() == [0, 1]
    assert res.pseudo_scores.tolist() == pytest.approx([0.8, 0.6])
    assert torch.equal(res.pseudo_bboxes, PROPS[[0, 3]])
    # IoU 0.5 is foreground (>=), 0.45 background; weights = pseudo score
    assert res.labels.tolist() == [0, 0, 2, 1, 2]
    assert res.weights.tolist() == pytest.approx([0.8, 0.8, 0.8, 0.6, 0.8])
    assert res.max_ious[1].item() == 0.5
    assert torch.equal(res.target_bboxes[:2], PROPS[[0, 0]])
    # only class 1 present: class 0's scores are never used
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([0., 1.]))
    assert res.labels.tolist() == [2, 2, 2, 1, 2]
    assert res.weights.tolist() == pytest.approx([0.6] * 5)


def test_fg_threshold_is_configurable():
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 0.]),
                             fg_iou_thr=0.4)
    assert res.labels.tolist() == [0, 0, 0, 2, 2]


def test_no_positive_class_all_background():
    res = oicr_pseudo_labels(PROPS, SCORES, torch.zeros(2),
                             bg_ignore_iou_thr=0.1)
    assert res.labels.tolist() == [2] * 5
    assert res.weights.tolist() == [1.] * 5
    assert res.pseudo_bboxes.shape == (0, 4)
    assert res.assigned_inds.tolist() == [-1] * 5
    res = oicr_pseudo_labels(PROPS, SCORES, torch.zeros(2), neg_weight=0.1)
    assert res.weights.tolist() == pytest.approx([0.1] * 5)


def test_bg_ignore_iou_thr_gives_zero_weight():
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 0.]),
                             bg_ignore_iou_thr=0.1)
    # P3 and P4 overlap the only pseudo box (P0) with IoU 0 < 0.1
    assert res.labels.tolist() == [0, 0, 2, 2, 2]
    assert res.weights.tolist() == pytest.approx([0.8, 0.8, 0.8, 0., 0.])
    with pytest.raises(ValueError, match='must not exceed'):
        oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 0.]),
                           bg_ignore_iou_thr=0.6)


def test_top_ratio_mines_several_boxes_with_nms():
    # 10 proposals: three separate cells (A, B, C) and near-duplicates of A
    props = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 11.],
                          [30., 30., 40., 40.], [60., 60., 70., 70.],
                          [0., 0., 11., 10.]] +
                         [[100. + 20 * i, 0., 110. + 20 * i, 10.]
                          for i in range(5)])
    scores = torch.zeros(10, 2)
    scores[:5, 0] = torch.tensor([0.9, 0.85, 0.7, 0.2, 0.8])
    scores[3, 1] = 0.5
    scores[5:, 1] = torch.tensor([0.01, 0.02, 0.03, 0.04, 0.05])
    res = oicr_pseudo_labels(props, scores, torch.tensor([1., 1.]),
                             mode='top_ratio', top_ratio=0.3, nms_thr=0.3)
    # k = floor(0.3 * 10) = 3 per class. Class 0: P0, P1, P4, but P1 and P4
    # (IoU 10/11 with P0) are suppressed; class 1: P3, P9, P8 (disjoint).
    assert res.pseudo_labels.tolist() == [0, 1, 1, 1]
    assert res.pseudo_scores.tolist() == pytest.approx([0.9, 0.5, 0.05, 0.04])
    assert torch.equal(res.pseudo_bboxes, props[[0, 3, 9, 8]])
    assert res.labels.tolist() == [0, 0, 2, 1, 0, 2, 2, 2, 1, 1]
    assert res.weights[[8, 9]].tolist() == pytest.approx([0.04, 0.05])
    # with a larger ratio the second cell of class 0 (P2) becomes a box
    res = oicr_pseudo_labels(props, scores, torch.tensor([1., 0.]),
                             mode='top_ratio', top_ratio=0.4, nms_thr=0.3)
    assert torch.equal(res.pseudo_bboxes, props[[0, 2]])
    assert res.pseudo_scores.tolist() == pytest.approx([0.9, 0.7])
    assert res.labels[:5].tolist() == [0, 0, 0, 2, 0]
    assert res.weights[2].item() == pytest.approx(0.7)
    # without NMS every selected proposal is a pseudo box
    bboxes, labels, _ = mine_pseudo_boxes(
        props, scores, torch.tensor([1., 0.]), mode='top_ratio',
        top_ratio=0.4, nms_thr=None)
    assert bboxes.shape == (4, 4) and labels.tolist() == [0] * 4


def test_gt_boxes_override_mining():
    gt = torch.tensor([[100., 100., 110., 110.]])
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 1.]),
                             gt_bboxes=gt, gt_labels=torch.tensor([1]))
    assert torch.equal(res.pseudo_bboxes, gt)
    assert res.labels.tolist() == [2, 2, 2, 2, 1]
    assert res.weights.tolist() == [1.] * 5
    # empty gt boxes: mined as usual
    res = oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1., 1.]),
                             gt_bboxes=torch.zeros(0, 4),
                             gt_labels=torch.zeros(0, dtype=torch.long))
    assert res.labels.tolist() == [0, 0, 2, 1, 2]


def test_tie_goes_to_higher_scoring_pseudo_box():
    # P0 is the top proposal of both classes; class 1 scores it higher
    scores = torch.tensor([[0.5, 0.7], [0.1, 0.1]])
    props = PROPS[:2]
    res = oicr_pseudo_labels(props, scores, torch.tensor([1., 1.]))
    assert res.labels.tolist() == [1, 1]
    assert res.weights.tolist() == pytest.approx([0.7, 0.7])


def test_no_proposal_and_bad_inputs():
    res = oicr_pseudo_labels(torch.zeros(0, 4), torch.zeros(0, 2),
                             torch.tensor([1., 0.]))
    assert res.labels.shape == (0, ) and res.weights.shape == (0, )
    res = assign_pseudo_labels(torch.zeros(0, 4), PROPS[:1],
                               torch.tensor([0]), torch.tensor([0.5]), 2)
    assert res.target_bboxes.shape == (0, 4)
    with pytest.raises(ValueError, match='multi-hot'):
        oicr_pseudo_labels(PROPS, SCORES, torch.tensor([1.]))
    with pytest.raises(ValueError, match='mode'):
        mine_pseudo_boxes(PROPS, SCORES, torch.tensor([1., 0.]), mode='all')
    with pytest.raises(ValueError, match='same shape'):
        mil_image_scores(DET, CLS[:2])


def test_pseudo_labels_carry_no_gradient():
    scores = SCORES.clone().requires_grad_()
    res = oicr_pseudo_labels(PROPS, scores, torch.tensor([1., 1.]))
    assert not res.weights.requires_grad
