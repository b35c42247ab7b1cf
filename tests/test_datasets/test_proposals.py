"""Tests of cervdet.datasets.proposals (cell-candidate proposals for weakly
supervised detection)."""
import numpy as np
import pytest

from cervdet.datasets import proposals as gp
from cervdet.evaluation.metrics.corloc_metric import box_iou
from conftest import blob_image


def test_box_iou_hand_checked():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [5, 0, 15, 10],
                  [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1., .5, 50 / 150, 0.]])
    assert box_iou(a, np.zeros((0, 4))).shape == (1, 0)


def test_proposal_recall_hand_checked():
    gts = [np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32),
           np.zeros((0, 4), np.float32),          # negative image
           np.array([[0, 0, 8, 8]], np.float32)]  # image without proposals
    props = [np.array([[0, 0, 10, 6],              # IoU 0.6 with gt 0
                       [20, 20, 40, 38]], np.float32),  # IoU 0.9 with gt 1
             np.array([[1, 1, 5, 5]], np.float32),
             np.zeros((0, 4), np.float32)]
    # best IoUs: 0.6, 0.9, 0 -> recall 2/3 at 0.5, 1/3 at 0.7 and 0.9
    np.testing.assert_allclose(
        gp.proposal_recall(props, gts, (0.5, 0.7, 0.9)), [2 / 3, 1 / 3, 1 / 3])
    assert np.isnan(gp.proposal_recall(props[1:2], gts[1:2])).all()
    with pytest.raises(ValueError, match='proposal sets'):
        gp.proposal_recall(props[:2], gts)


def test_dedupe_and_nms():
    boxes = np.array([[0, 0, 40, 40], [1, 0, 41, 40], [0, 0, 20, 20],
                      [100, 100, 140, 140]], np.float32)
    scores = np.array([0.5, 0.9, 0.3, 0.1], np.float32)
    keep = gp.dedupe_boxes(boxes, scores)
    assert list(keep) == [1, 2, 3]  # box 0 shares box 1's cell, lower score
    keep = gp.nms(boxes, scores, 0.5)
    assert list(keep) == [1, 2, 3]  # IoU(0, 1) ~0.95, box 2 only 0.25
    assert list(gp.nms(boxes, scores, 0.5, max_num=2)) == [1, 2]
    assert gp.nms(boxes[:0], scores[:0], 0.5).shape == (0, )


def test_generate_proposals_finds_cells_and_keeps_the_format():
    img, gts = blob_image()
    cfg = gp.ProposalConfig(max_per_img=300, min_size=6)
    bboxes, scores = gp.generate_proposals(img, cfg)
    assert bboxes.dtype == np.float32 and scores.dtype == np.float32
    assert bboxes.shape[1] == 4 and 0 < len(bboxes) <= 300
    assert len(scores) == len(bboxes) and np.all(np.diff(scores) <= 0)
    assert np.all(bboxes[:, :2] >= 0) and np.all(bboxes[:, 2] <= 300) \
        and np.all(bboxes[:, 3] <= 200)
    assert np.all(bboxes[:, 2:] - bboxes[:, :2] >= 6)
    best = box_iou(gts, bboxes).max(axis=1)
    assert np.all(best > 0.85), best
    # blob boxes rank first: every cell is among the 10 best proposals
    assert np.all(box_iou(gts, bboxes[:10]).max(axis=1) > 0.85)
    # a blank field gives few or no proposals, in the same format
    blank, _ = gp.generate_proposals(np.full((64, 64, 3), 230, np.uint8), cfg)
    assert blank.shape[1] == 4


def test_proposal_key_matches_mmdet_and_the_dataset():
    from cervdet.datasets.weak_coco import proposal_key
    for path in ('data/mosaic/images/train/a.jpg', 'images/x/y/b.png',
                 'c.jpg'):
        assert gp.proposal_key(path) == proposal_key(path)
    assert gp.proposal_key('data/m/images/train/a.jpg') == 'train/a.jpg'
