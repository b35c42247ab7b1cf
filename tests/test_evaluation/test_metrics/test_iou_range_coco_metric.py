"""IoURangeCocoMetric against pycocotools run directly on the same
hand-made detections."""
import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import Evaluator
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cervdet.evaluation.metrics import IoURangeCocoMetric, iou_thresholds, range_ap

CLASSES = ('ASC-US', 'HSIL', 'SCC')   # SCC: no ground truth
CAT_IDS = (1, 2, 3)
RANGE = np.round(np.linspace(0.1, 0.7, 13), 10)


def _make_data(seed: int = 0):
    """COCO ground truth and predictions (xyxy, per image) with IoUs spread
    over 0..1: jittered copies of the gt boxes, misses, false positives
    (some of class SCC, which has no ground truth) and a negative image."""
    rng = np.random.default_rng(seed)
    images, anns, preds = [], [], []
    for img_id in range(1, 6):
        images.append(dict(id=img_id, file_name=f'{img_id}.jpg', width=200,
                           height=200))
        n = 0 if img_id == 5 else int(rng.integers(2, 6))
        xy = rng.uniform(0, 150, (n, 2))
        wh = rng.uniform(8, 45, (n, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(0, 2, n)                  # ASC-US / HSIL
        for box, lab in zip(gt, labels):
            anns.append(dict(id=len(anns) + 1, image_id=img_id,
                             category_id=CAT_IDS[lab], iscrowd=0,
                             bbox=[box[0], box[1], box[2] - box[0],
                                   box[3] - box[1]],
                             area=float(np.prod(box[2:] - box[:2]))))
        keep = rng.random(n) > 0.2                      # some misses
        jitter = rng.normal(0, 0.1, (n, 4)) * np.tile(wh, 2)
        det = (gt + jitter)[keep]
        det_labels = labels[keep]
        fp = rng.integers(1, 4)
        fxy = rng.uniform(0, 160, (fp, 2))
        det = np.concatenate([det, np.concatenate(
            [fxy, fxy + rng.uniform(8, 40, (fp, 2))], 1)])
        det_labels = np.concatenate([det_labels, rng.integers(0, 3, fp)])
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        preds.append(dict(img_id=img_id, bboxes=det, labels=det_labels,
                          scores=rng.uniform(0.05, 1, len(det))))
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=i, name=n)
                            for i, n in zip(CAT_IDS, CLASSES)])
    return coco, preds


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    coco, preds = _make_data()
    ann_file = tmp_path_factory.mktemp('iou_range') / 'gt.json'
    ann_file.write_text(json.dumps(coco))
    return str(ann_file), preds


def _samples(preds):
    return [dict(img_id=p['img_id'], ori_shape=(200, 200),
                 pred_instances=dict(
                     bboxes=torch.as_tensor(p['bboxes'], dtype=torch.float32),
                     scores=torch.as_tensor(p['scores'], dtype=torch.float32),
                     labels=torch.as_tensor(p['labels'])))
            for p in preds]


def _evaluate(ann_file, preds, **kw):
    evaluator = Evaluator(dict(type='IoURangeCocoMetric', ann_file=ann_file,
                               **kw))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=_samples(preds))
    return evaluator.evaluate(len(preds))


def _pycocotools(ann_file, preds, iou_thrs=None, cat_ids=CAT_IDS):
    """pycocotools' stats, the detections rounded to float32 as the metric
    sees them."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dets = []
        for p in preds:
            boxes = p['bboxes'].astype(np.float32).astype(np.float64)
            for b, s, c in zip(boxes, p['scores'].astype(np.float32),
                               p['labels']):
                dets.append(dict(image_id=p['img_id'],
                                 category_id=CAT_IDS[c], score=float(s),
                                 bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]]))
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.params.catIds = list(cat_ids)
        ev.params.maxDets = [100, 300, 1000]
        if iou_thrs is not None:
            ev.params.iouThrs = iou_thrs
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_matches_pycocotools_overall_and_per_class(data):
    ann_file, preds = data
    res = _evaluate(ann_file, preds)
    ref = _pycocotools(ann_file, preds, RANGE)[0]
    assert 0.2 < ref < 0.95  # a non-trivial value
    assert res['coco/bbox_mAP_10_70'] == pytest.approx(ref, abs=1e-9)
    for cat, name in zip(CAT_IDS, CLASSES):
        ref_c = _pycocotools(ann_file, preds, RANGE, cat_ids=[cat])[0]
        got = res[f'coco/{name}_AP_10_70']
        if name == 'SCC':  # no gt: pycocotools -1, the metric nan
            assert ref_c == -1 and math.isnan(got)
        else:
            assert got == pytest.approx(ref_c, abs=1e-9)
    # the class without gt is left out of the mean, as in COCO
    per_class = [res[f'coco/{n}_AP_10_70'] for n in CLASSES[:2]]
    assert res['coco/bbox_mAP_10_70'] == pytest.approx(np.mean(per_class))


def test_standard_coco_ap_unchanged(data):
    ann_file, preds = data
    res = _evaluate(ann_file, preds)
    ref = _pycocotools(ann_file, preds)
    for i, key in enumerate(('mAP', 'mAP_50', 'mAP_75')):
        assert ref[i] > 0
        assert res[f'coco/bbox_{key}'] == pytest.approx(round(ref[i], 3),
                                                        abs=1e-9)
    # the low range is more lenient than 0.50:0.95
    assert res['coco/bbox_mAP_10_70'] > res['coco/bbox_mAP']


def test_plain_coco_metric_with_range_breaks_map50(data):
    """Why the subclass: CocoMetric(iou_thrs=np.arange(.1, .71, .05)) loses
    mAP_50 / mAP_75 (pycocotools looks 0.5 up by float equality)."""
    ann_file, preds = data
    evaluator = Evaluator(dict(type='CocoMetric', ann_file=ann_file,
                               iou_thrs=np.arange(.1, .71, .05)))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=_samples(preds))
    res = evaluator.evaluate(len(preds))
    assert res['coco/bbox_mAP_50'] == -1 and res['coco/bbox_mAP_75'] == -1
    # its mAP is the range mAP (rounded): same thresholds
    ref = _pycocotools(ann_file, preds, RANGE)[0]
    assert res['coco/bbox_mAP'] == pytest.approx(round(ref, 3), abs=1e-9)


def test_custom_range_and_no_classwise(data):
    ann_file, preds = data
    res = _evaluate(ann_file, preds, iou_range=(0.3, 0.5, 0.1),
                    range_classwise=False)
    ref = _pycocotools(ann_file, preds, np.array([0.3, 0.4, 0.5]))[0]
    assert res['coco/bbox_mAP_30_50'] == pytest.approx(ref, abs=1e-9)
    assert not [k for k in res if k.endswith('_AP_30_50')]


def test_no_predictions(data):
    ann_file, preds = data
    empty = [dict(p, bboxes=np.zeros((0, 4)), labels=np.zeros(0, int),
                  scores=np.zeros(0)) for p in preds]
    res = _evaluate(ann_file, empty)
    assert res['coco/bbox_mAP_10_70'] == 0.
    assert res['coco/ASC-US_AP_10_70'] == 0. == res['coco/HSIL_AP_10_70']
    assert math.isnan(res['coco/SCC_AP_10_70'])


def test_iou_thresholds_and_errors():
    thrs = iou_thresholds((0.1, 0.7, 0.05))
    assert len(thrs) == 13 and thrs[0] == 0.1 and thrs[-1] == 0.7
    assert 0.5 in thrs  # exact, unlike np.arange
    with pytest.raises(ValueError, match='multiple of step'):
        iou_thresholds((0.1, 0.7, 0.25))
    with pytest.raises(ValueError, match='0 < start'):
        iou_thresholds((0.0, 0.7, 0.05))
    with pytest.raises(ValueError, match='start, stop'):
        iou_thresholds((0.1, 0.7))
    metric = METRICS.build(dict(type='IoURangeCocoMetric',
                                iou_thrs=np.arange(.5, .96, .05)))
    assert isinstance(metric, IoURangeCocoMetric)
    assert 0.75 in metric.iou_thrs  # rounded: mAP_75 found by pycocotools


def test_range_ap_masks_missing_classes():
    prec = -np.ones((2, 3, 2, 4, 3))
    prec[:, :, 0, 0, -1] = [[1., .5, 0.], [1., 1., 1.]]
    overall, per_class = range_ap(prec)
    assert overall == pytest.approx(4.5 / 6)
    assert per_class[0] == pytest.approx(4.5 / 6) and math.isnan(per_class[1])
