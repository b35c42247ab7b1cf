"""CorLocMetric on hand-made predictions."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from cervdet.datasets import BETHESDA_CLASSES
from cervdet.evaluation.metrics import CorLocMetric, corloc_hits
from cervdet.evaluation.metrics.corloc_metric import box_iou


def _sample(gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels,
            use_instances=True, scale=1.0, flip=None, ori_shape=(100, 100)):
    """A data sample as the test loop hands it to the metric.

    ``use_instances``: ground truth as metainfo ``instances`` (original
    coordinates); else as ``gt_instances`` resized by ``scale`` (and flipped
    horizontally when ``flip``), as LoadAnnotations before Resize gives.
    """
    h, w = ori_shape
    img_shape = (round(h * scale), round(w * scale))
    meta = dict(img_id=0, img_path='x.jpg', ori_shape=ori_shape,
                img_shape=img_shape, scale_factor=(scale, scale),
                flip=flip is not None, flip_direction=flip)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    if use_instances:
        meta['instances'] = [dict(bbox=b.tolist(), bbox_label=int(c),
                                  ignore_flag=0)
                             for b, c in zip(gt_boxes, gt_labels)]
    sample = DetDataSample(metainfo=meta)
    if not use_instances:
        boxes = gt_boxes * scale
        if flip == 'horizontal':
            boxes = np.stack([img_shape[1] - boxes[:, 2], boxes[:, 1],
                              img_shape[1] - boxes[:, 0], boxes[:, 3]], 1)
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.from_numpy(boxes)),
            labels=torch.as_tensor(gt_labels, dtype=torch.long))
    sample.pred_instances = InstanceData(
        bboxes=torch.as_tensor(pred_boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.as_tensor(pred_scores, dtype=torch.float32),
        labels=torch.as_tensor(pred_labels, dtype=torch.long))
    return sample


#: (gt boxes, gt labels, pred boxes, pred scores, pred labels) per image;
#: expected: class 0 -> 2/3, class 1 -> 0/1, classes 2-4 absent.
IMAGES = [
    # hit for class 0 (top box exact); class 1: the top box has IoU 0.45
    # (miss), although a lower-scoring exact box exists; class 3 predicted
    # but not in the ground truth (ignored)
    ([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1],
     [[0, 0, 10, 10], [60, 60, 80, 80], [20, 20, 40, 29], [20, 20, 40, 40],
      [0, 0, 10, 10]],
     [0.9, 0.5, 0.8, 0.7, 0.95], [0, 0, 1, 1, 3]),
    # wrong class: the right box predicted as class 2 -> class 0 missed
    ([[50, 50, 70, 70]], [0], [[50, 50, 70, 70]], [0.9], [2]),
    # hit at IoU exactly 0.5 (>= iou_thr)
    ([[5, 5, 25, 25]], [0], [[5, 5, 25, 15]], [0.3], [0]),
    # negative image: predictions do not count
    ([], [], [[1, 1, 9, 9]], [0.99], [4]),
]


def _evaluate(samples, **kw):
    evaluator = Evaluator(dict(type='CorLocMetric', **kw))
    evaluator.dataset_meta = dict(classes=BETHESDA_CLASSES)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


def test_corloc_hits_hand_checked():
    classes, hits = corloc_hits(*[np.asarray(x) for x in
                                  (IMAGES[0][2], IMAGES[0][3], IMAGES[0][4],
                                   IMAGES[0][0], IMAGES[0][1])])
    assert classes.tolist() == [0, 1] and hits.tolist() == [True, False]
    # lower threshold: the IoU 0.45 top box of class 1 becomes a hit
    _, hits = corloc_hits(IMAGES[0][2], IMAGES[0][3], IMAGES[0][4],
                          IMAGES[0][0], IMAGES[0][1], iou_thr=0.4)
    assert hits.tolist() == [True, True]
    classes, hits = corloc_hits(np.zeros((0, 4)), [], [], [[0, 0, 5, 5]],
                                [2])
    assert classes.tolist() == [2] and hits.tolist() == [False]


@pytest.mark.parametrize('use_instances', [True, False])
def test_metric_multiple_images_and_mean(use_instances):
    samples = [_sample(*img, use_instances=use_instances) for img in IMAGES]
    res = _evaluate(samples)
    assert res == {
        'corloc/ASC-US': pytest.approx(2 / 3),
        'corloc/ASC-H': pytest.approx(0.),
        'corloc/mean': pytest.approx(1 / 3)
    }  # LSIL, HSIL, SCC absent: not reported, not in the mean
    assert isinstance(METRICS.build(dict(type='CorLocMetric')), CorLocMetric)


def test_resized_and_flipped_gt_instances_are_mapped_back():
    # gt_instances resized x2 and flipped (LoadAnnotations before Resize in a
    # ProposalBroadcaster pipeline); predictions in original coordinates
    samples = [_sample(*img, use_instances=False, scale=2.0,
                       flip='horizontal') for img in IMAGES]
    assert _evaluate(samples, gt_frame='resized')['corloc/mean'] == \
        pytest.approx(1 / 3)
    # read as original coordinates, gt beyond the image is caught
    big = [_sample([[60, 60, 90, 90]], [0], [[60, 60, 90, 90]], [1.], [0],
                   use_instances=False, scale=2.0)]
    with pytest.raises(ValueError, match="gt_frame='resized'"):
        _evaluate(big)


def test_missing_ground_truth_and_no_positive_image():
    sample = DetDataSample(metainfo=dict(img_id=0, ori_shape=(10, 10)))
    sample.pred_instances = InstanceData(
        bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
        labels=torch.zeros(0, dtype=torch.long))
    with pytest.raises(KeyError, match='LoadAnnotations'):
        _evaluate([sample])
    res = _evaluate([_sample(*IMAGES[3])])  # only a negative image
    assert list(res) == ['corloc/mean'] and math.isnan(res['corloc/mean'])
    with pytest.raises(ValueError, match='gt_frame'):
        CorLocMetric(gt_frame='scaled')


def test_results_gathered_from_two_ranks_give_the_same():
    # each rank stores per-image (classes, hits); collect_results
    # concatenates them: the result must not depend on the split
    metric = CorLocMetric()
    metric.dataset_meta = dict(classes=BETHESDA_CLASSES)
    metric.process(None, [_sample(*img).to_dict() for img in IMAGES[:2]])
    part = list(metric.results)
    metric.results = []
    metric.process(None, [_sample(*img).to_dict() for img in IMAGES[2:]])
    merged = metric.compute_metrics(part + metric.results)
    assert merged['mean'] == pytest.approx(1 / 3)


def test_box_iou_is_mmdet_bbox_overlaps_in_float64():
    a = np.array([[0., 0., 10., 10.], [3., 3., 3., 3.]])   # zero-area second
    b = np.array([[0., 0., 10., 5.], [5., 0., 15., 10.], [3., 3., 3., 3.]])
    got = box_iou(a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[.5, 50 / 150, 0.], [0., 0., 0.]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
