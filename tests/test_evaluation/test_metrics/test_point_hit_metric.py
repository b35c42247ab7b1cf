"""PointHitMetric against hand-computed hits, misses, FROC and AP."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from cervdet.evaluation.metrics import PointHitMetric
from cervdet.evaluation.metrics.point_hit_metric import (
    DUPLICATE,
    NILM_ONLY,
    OTHER_ABNORMAL,
    TP,
    UNMARKED,
    detection_outcomes,
    froc_sensitivities,
    greedy_point_matching,
    point_cover,
    voc_ap,
)

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ('ASC-US', 'LSIL', 'HSIL')          # NILM is background
CATS = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]


def _ann(aid, img, cat, point, size=20.):
    x, y = point
    return dict(id=aid, image_id=img, category_id=cat, iscrowd=0,
                bbox=[x - size / 2, y - size / 2, size, size],
                area=size * size, point=[float(x), float(y)],
                bethesda_class=CLASSES[cat - 1], cric_cell_id=aid)


def _coco(tmp_path, images=None, anns=None, name='ann.json'):
    """Image 1: LSIL A (20,20), HSIL B (60,60), LSIL C (64,64) and a NILM
    other point (80,20); image 2: ASC-US D (30,70); image 3: no point."""
    if images is None:
        images = [
            dict(id=1, file_name='f1.jpg', width=100, height=100,
                 other_points=[dict(point=[80., 20.], bethesda_class='NILM',
                                    cric_cell_id=90)]),
            dict(id=2, file_name='f2.jpg', width=100, height=100,
                 other_points=[]),
            dict(id=3, file_name='f3.jpg', width=100, height=100)]
    if anns is None:
        anns = [_ann(1, 1, 2, (20, 20)), _ann(2, 1, 3, (60, 60)),
                _ann(3, 1, 2, (64, 64)), _ann(4, 2, 1, (30, 70))]
    path = tmp_path / name
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=CATS)))
    return str(path)


def _sample(img_id, boxes, scores, labels, shape=(100, 100)):
    s = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=shape,
                                    img_path=f'f{img_id}.jpg'))
    s.pred_instances = InstanceData(
        bboxes=torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.as_tensor(scores, dtype=torch.float32).reshape(-1),
        labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1))
    return s


ASCUS, LSIL, HSIL = 0, 1, 2
#: detections (box, score, label) per image, outcome in comments
#: (class view | abnormal view)
DETS = {
    1: [([10, 10, 30, 30], .9, LSIL),   # d1 A: TP | TP
        ([55, 55, 70, 70], .8, HSIL),   # d2 covers B, C: TP(B) | TP(C)
        ([58, 58, 68, 68], .7, LSIL),   # d3 covers B, C: TP(C) | TP(B)
        ([75, 15, 85, 25], .6, HSIL),   # d4 NILM point only: FP
        ([12, 12, 28, 28], .4, LSIL),   # d5 A again: duplicate FP
        ([40, 80, 50, 90], .25, ASCUS)],  # d6 nothing: unmarked FP
    2: [([25, 65, 35, 75], .3, LSIL),   # d7 ASC-US D: other class | TP
        ([0, 0, 10, 10], .2, ASCUS)],   # d8 nothing: unmarked FP
    3: [([40, 40, 60, 60], .35, HSIL)],  # d9 negative image: unmarked FP
}


def _run(metric, dets=DETS, classes=CLASSES, shape=(100, 100)):
    metric.dataset_meta = dict(classes=classes)
    for img_id, d in dets.items():
        boxes = [x[0] for x in d]
        scores = [x[1] for x in d]
        labels = [x[2] for x in d]
        metric.process({}, [_sample(img_id, boxes, scores, labels,
                                    shape).to_dict()])
    return metric.evaluate(len(dets))


def test_registered():
    assert METRICS.get('PointHitMetric') is PointHitMetric


def test_hand_computed_default(tmp_path):
    res = _run(PointHitMetric(ann_file=_coco(tmp_path)))
    p = 'point/abnormal/'
    # abnormal view, score >= 0.5: d1 d2 d3 hit 3 of 4 points, d4 (on the
    # NILM cell) is the one FP
    assert res[p + 'tp@0.5'] == 3 and res[p + 'fp@0.5'] == 1
    assert res[p + 'on_nilm@0.5'] == 1 and res[p + 'on_unmarked@0.5'] == 0
    assert res[p + 'recall@0.5'] == pytest.approx(0.75)
    assert res[p + 'precision@0.5'] == pytest.approx(0.75)
    assert res[p + 'f1@0.5'] == pytest.approx(0.75)
    assert res[p + 'num_points'] == 4
    # by score: TP TP TP FP(.6) FP(.4 dup) FP(.35) TP(.3) FP(.25) FP(.2),
    # 3 images: FPPI 0 0 0 1/3 2/3 1 1 4/3 5/3, sens .25 .5 .75 ... 1
    assert res[p + 'sens@0.5fppi'] == pytest.approx(0.75)
    for r in (1, 2, 4, 8):
        assert res[p + f'sens@{r}fppi'] == pytest.approx(1.0)
    assert res[p + 'froc'] == pytest.approx(0.95)
    # VOC AP: recall .75 at precision 1, recall 1 at precision 4/7
    assert res[p + 'AP'] == pytest.approx(0.75 + 0.25 * 4 / 7)
    # class-aware: LSIL d1 A, d3 C hit, d5 dup, d7 on ASC-US (below 0.5)
    assert res['point/LSIL/recall@0.5'] == pytest.approx(1.0)
    assert res['point/LSIL/precision@0.5'] == pytest.approx(1.0)
    assert res['point/LSIL/AP'] == pytest.approx(1.0)
    # HSIL: d2 B hit, d4 FP at 0.6 -> precision 1/2, F1 2/3
    assert res['point/HSIL/recall@0.5'] == pytest.approx(1.0)
    assert res['point/HSIL/precision@0.5'] == pytest.approx(0.5)
    assert res['point/HSIL/f1@0.5'] == pytest.approx(2 / 3)
    assert res['point/HSIL/AP'] == pytest.approx(1.0)
    # ASC-US: D missed (only d7, an LSIL box, is on it), no detection >= 0.5
    assert res['point/ASC-US/recall@0.5'] == 0.
    assert math.isnan(res['point/ASC-US/precision@0.5'])
    assert res['point/ASC-US/f1@0.5'] == 0.
    assert res['point/ASC-US/AP'] == 0.
    # NILM is not a class: no normal group
    assert not any(k.startswith('point/normal/') for k in res)


def test_outcome_codes_and_two_point_box():
    # image 1 of DETS alone
    boxes = np.array([d[0] for d in DETS[1]], float)
    scores = np.array([d[1] for d in DETS[1]])
    labels = np.array([d[2] for d in DETS[1]])
    points = np.array([[20, 20], [60, 60], [64, 64], [80, 20]], float)
    pcls = np.array([LSIL, HSIL, LSIL, -1])
    abnormal = np.array([True, True, True, False])
    cover, dist = point_cover(boxes, points)
    assert cover[1, 1] and cover[1, 2]              # d2 covers B and C
    same_grp = np.ones_like(cover) & abnormal[None]
    m = greedy_point_matching(scores, cover & same_grp, dist)
    # d2 takes only C (nearer its centre), d3 gets B: two points, two hits
    np.testing.assert_array_equal(m, [0, 2, 1, -1, -1, -1])
    codes = detection_outcomes(cover, same_grp, m, abnormal)
    np.testing.assert_array_equal(codes, [TP, TP, TP, NILM_ONLY, DUPLICATE,
                                          UNMARKED])
    same_cls = labels[:, None] == pcls[None]
    mc = greedy_point_matching(scores, cover & same_cls, dist)
    np.testing.assert_array_equal(mc, [0, 1, 2, -1, -1, -1])
    # a box alone over two points hits one of them
    one = greedy_point_matching([0.9], cover[1:2] & same_grp[1:2],
                                dist[1:2])
    assert one.tolist() == [2]
    # class view: an LSIL box on the ASC-US point only is another class's
    codes = detection_outcomes(np.array([[True]]), np.array([[False]]),
                               np.array([-1]), np.array([True]))
    assert codes.tolist() == [OTHER_ABNORMAL]


def test_greedy_equals_sequential_definition():
    """The round-based matching equals the one-detection-at-a-time greedy
    definition on random dense problems (with ties in score)."""
    rng = np.random.default_rng(0)

    def sequential(scores, cover, dist):
        match = np.full(len(scores), -1)
        taken = np.zeros(cover.shape[1], bool)
        for i in np.argsort(-scores, kind='stable'):
            cand = np.flatnonzero(cover[i] & ~taken)
            if cand.size:
                j = cand[np.argmin(dist[i, cand])]
                match[i], taken[j] = j, True
        return match

    for _ in range(300):
        n, m = rng.integers(0, 12), rng.integers(0, 8)
        scores = rng.integers(0, 5, n) / 4.          # many ties
        cover = rng.random((n, m)) < 0.5
        dist = rng.integers(0, 4, (n, m)).astype(float)  # ties in distance
        np.testing.assert_array_equal(
            greedy_point_matching(scores, cover, dist),
            sequential(scores, cover, dist))


def test_fp_flags(tmp_path):
    ann = _coco(tmp_path)
    # unmarked detections ignored: d6, d8, d9 leave the ranking
    res = _run(PointHitMetric(ann_file=ann, unmarked_as_fp=False))
    p = 'point/abnormal/'
    assert res[p + 'fp@0.5'] == 1                  # d4 on NILM still FP
    # TP TP TP FP FP TP: recall 1 at precision 4/6
    assert res[p + 'AP'] == pytest.approx(0.75 + 0.25 * 4 / 6)
    # FP 1 (d4) 2 (d5) then the 4th hit at FPPI 2/3
    assert res[p + 'sens@0.5fppi'] == pytest.approx(0.75)
    assert res[p + 'sens@1fppi'] == pytest.approx(1.0)
    # the NILM hit ignored too: no FP at 0.5
    res = _run(PointHitMetric(ann_file=ann, unmarked_as_fp=False,
                              nilm_hits_as_fp=False))
    assert res[p + 'fp@0.5'] == 0
    assert res[p + 'precision@0.5'] == pytest.approx(1.0)
    assert res[p + 'on_nilm@0.5'] == 1             # still reported
    # lower threshold: all nine detections; d7 adds the 4th hit
    res = _run(PointHitMetric(ann_file=ann, score_thr=0.2))
    assert res[p + 'tp@0.2'] == 4 and res[p + 'fp@0.2'] == 5
    assert res[p + 'on_unmarked@0.2'] == 3
    assert res[p + 'precision@0.2'] == pytest.approx(4 / 9)
    assert res[p + 'f1@0.2'] == pytest.approx(8 / 13)


def test_empty_predictions(tmp_path):
    res = _run(PointHitMetric(ann_file=_coco(tmp_path)),
               dets={1: [], 2: [], 3: []})
    p = 'point/abnormal/'
    assert res[p + 'recall@0.5'] == 0. and res[p + 'f1@0.5'] == 0.
    assert math.isnan(res[p + 'precision@0.5'])
    assert res[p + 'AP'] == 0. and res[p + 'froc'] == 0.
    assert res[p + 'num_points'] == 4


def test_negative_image_detections_are_fp(tmp_path):
    res = _run(PointHitMetric(ann_file=_coco(tmp_path)),
               dets={3: [([0, 0, 10, 10], .9, HSIL),
                         ([20, 20, 30, 30], .8, LSIL)]})
    p = 'point/abnormal/'
    assert res[p + 'fp@0.5'] == 2 and res[p + 'tp@0.5'] == 0
    assert res[p + 'precision@0.5'] == 0.
    assert math.isnan(res[p + 'recall@0.5'])
    assert math.isnan(res[p + 'AP']) and math.isnan(res[p + 'froc'])
    # ignored when unmarked detections do not count
    res = _run(PointHitMetric(ann_file=_coco(tmp_path),
                              unmarked_as_fp=False),
               dets={3: [([0, 0, 10, 10], .9, HSIL)]})
    assert res[p + 'fp@0.5'] == 0


def test_radius_mode_um_per_px(tmp_path):
    images = [dict(id=1, file_name='f1.jpg', width=100, height=100,
                   um_per_px=0.5),
              dict(id=2, file_name='f2.jpg', width=100, height=100)]
    anns = [_ann(1, 1, 2, (20, 20)), _ann(2, 2, 2, (20, 20))]
    ann = _coco(tmp_path, images, anns)
    # box centres (25, 20) -> 5 px, (33, 20) -> 13 px from the point
    dets = {1: [([15, 10, 35, 30], .9, LSIL)],
            2: [([23, 10, 43, 30], .9, LSIL)]}
    # image 1: 0.5 um/px -> 5 um = 10 px: hit. image 2: argument 0.25 um/px
    # -> 5 um = 20 px: hit (13 px)
    res = _run(PointHitMetric(ann_file=ann, match='radius', radius_um=5,
                              um_per_px=0.25), dets=dets)
    assert res['point/abnormal/tp@0.5'] == 2
    # argument 1.0 um/px for image 2 -> 5 px: miss; image 1 keeps its own
    # 0.5 um/px (the field wins over the argument)
    res = _run(PointHitMetric(ann_file=ann, match='radius', radius_um=5,
                              um_per_px=1.0), dets=dets)
    assert res['point/abnormal/tp@0.5'] == 1
    assert res['point/abnormal/fp@0.5'] == 1
    # 'inside': the second box (x from 23) does not contain its point
    res = _run(PointHitMetric(ann_file=ann), dets=dets)
    assert res['point/abnormal/tp@0.5'] == 1
    # exactly on the radius counts: centre 10 px away at 0.5 um/px, 5 um
    res = _run(PointHitMetric(ann_file=ann, match='radius', radius_um=5,
                              um_per_px=0.5),
               dets={1: [([20, 20, 40, 20], .9, LSIL)]})
    assert res['point/abnormal/tp@0.5'] == 1


def test_missing_um_per_px_error(tmp_path):
    ann = _coco(tmp_path)
    with pytest.raises(ValueError, match='um_per_px') as err:
        PointHitMetric(ann_file=ann, match='radius', radius_um=5)
    assert 'ann.json' in str(err.value) and 'f1.jpg' in str(err.value)
    with pytest.raises(ValueError, match='radius_um'):
        PointHitMetric(ann_file=ann, match='radius')
    with pytest.raises(ValueError, match="'inside' or 'radius'"):
        PointHitMetric(ann_file=ann, match='iou')


def test_bad_input_errors(tmp_path):
    ann = _coco(tmp_path)
    metric = PointHitMetric(ann_file=ann)
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(KeyError, match='img_id 7'):
        metric.process({}, [_sample(7, [], [], []).to_dict()])
    with pytest.raises(ValueError, match='different pixel frames'):
        metric.process({}, [_sample(1, [], [], [], shape=(50, 60)).to_dict()])
    bad = [_ann(1, 1, 2, (20, 20))]
    bad[0]['point'] = [3.]
    with pytest.raises(ValueError, match='annotation 1 has "point"'):
        PointHitMetric(ann_file=_coco(tmp_path, anns=bad, name='bad.json'))


def test_normal_group_and_point_from_bbox(tmp_path):
    """bethesda6-like classes: NILM is a class, ``normal/...`` appears; an
    annotation without ``point`` uses its box centre."""
    classes = ('NILM', 'LSIL')
    cats = [dict(id=1, name='NILM'), dict(id=2, name='LSIL')]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20],
                 area=400, iscrowd=0),                       # centre 20,20
            dict(id=2, image_id=1, category_id=2, bbox=[50, 50, 20, 20],
                 area=400, iscrowd=0, point=[60., 60.])]
    path = tmp_path / 'b6.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='f1.jpg', width=100, height=100)],
        annotations=anns, categories=cats)))
    dets = {1: [([15, 15, 25, 25], .9, 0),     # NILM on NILM: normal TP
                ([55, 55, 65, 65], .8, 0),     # NILM on LSIL: normal FP
                ([52, 52, 68, 68], .7, 1)]}    # LSIL on LSIL: abnormal TP
    res = _run(PointHitMetric(ann_file=str(path)), dets=dets,
               classes=classes)
    assert res['point/normal/recall@0.5'] == pytest.approx(1.)
    assert res['point/normal/precision@0.5'] == pytest.approx(0.5)
    assert res['point/NILM/precision@0.5'] == pytest.approx(0.5)
    assert res['point/abnormal/tp@0.5'] == 1
    assert res['point/abnormal/fp@0.5'] == 0
    assert res['point/abnormal/precision@0.5'] == pytest.approx(1.)


def test_froc_and_ap_functions():
    # tie at 0.8 between a hit and a FP: one operating point, FPPI 1
    sens = froc_sensitivities([.9, .8, .8], [1, 1, 0], [0, 0, 1], 2, 1,
                              [0.5, 1])
    np.testing.assert_allclose(sens, [0.5, 1.0])
    # no detection reaches the rate: 0 (strictest threshold keeps none)
    np.testing.assert_allclose(
        froc_sensitivities([.9], [0], [1], 3, 1, [0.5]), [0.])
    # VOC AP: hits at ranks 1 and 3 of 3, 2 points: 1 * .5 + 2/3 * .5
    assert voc_ap([.9, .8, .7], [1, 0, 1], [0, 1, 0], 2) == \
        pytest.approx(0.5 + 1 / 3)
    # a missed point caps recall: one hit of 2 points
    assert voc_ap([.9], [1], [0], 2) == pytest.approx(0.5)


def test_evaluator_with_coco_metric(tmp_path):
    """Both metrics in one mmengine Evaluator: keys prefixed, no clash."""
    ann = _coco(tmp_path)
    evaluator = Evaluator([
        dict(type='CocoMetric', ann_file=ann, metric='bbox'),
        dict(type='PointHitMetric', ann_file=ann)])
    evaluator.dataset_meta = dict(classes=CLASSES)
    for img_id, d in DETS.items():
        evaluator.process([_sample(img_id, [x[0] for x in d],
                                   [x[1] for x in d], [x[2] for x in d])])
    res = evaluator.evaluate(len(DETS))
    assert 'coco/bbox_mAP' in res and 'coco/bbox_mAP_50' in res
    assert res['point/abnormal/recall@0.5'] == pytest.approx(0.75)
    assert res['point/abnormal/AP'] == pytest.approx(0.75 + 0.25 * 4 / 7)
    # d1 is the exact box of A (20x20 around the point): COCO finds it too
    assert res['coco/bbox_mAP_50'] > 0


def test_benchmark_smoke():
    """The benchmark's smoke mode prints its table with the documented
    columns, one row per metric."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'bench_point_metric.py'),
         '--smoke'], capture_output=True, text=True, timeout=600,
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT),
                           OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    assert header == ['metric', 'images', 'detections', 'points',
                      'process s', 'compute s', 'total s', 'detections/s',
                      'x CocoMetric']
    rows = {ln.strip('|').split('|')[0].strip(): ln for ln in lines[2:]}
    assert set(rows) == {'PointHitMetric', 'CocoMetric'}
    ratio = float(rows['PointHitMetric'].strip('|').split('|')[-1])
    assert ratio > 0


def _cric_coco(shared_data, tmp_path):
    """The 213 real CRIC fields as the cervdet COCO contract (abnormal5 label
    set, NILM cells in ``other_points``), points scaled from CRIC's native
    1376x1020 frame to the stored 688x510 JPEGs."""
    import csv
    root = shared_data / 'cric_cervix'
    stems = sorted(p.stem for p in (root / 'images').glob('*.jpg'))
    ids = {s: i + 1 for i, s in enumerate(stems)}
    images = {s: dict(id=ids[s], file_name=f'{s}.jpg', width=688,
                      height=510, other_points=[]) for s in stems}
    anns = []
    names = dict(zip(('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC'), range(5)))
    with open(root / 'classifications.csv') as f:
        for row in csv.DictReader(f):
            stem = Path(row['image_filename']).stem
            if stem not in images:
                continue
            pt = [float(row['nucleus_x']) * 688 / 1376,
                  float(row['nucleus_y']) * 510 / 1020]
            tbs = row['bethesda_system']
            if tbs == 'Negative for intraepithelial lesion':
                images[stem]['other_points'].append(dict(
                    point=pt, bethesda_class='NILM',
                    cric_cell_id=int(row['cell_id'])))
                continue
            anns.append(dict(id=len(anns) + 1, image_id=ids[stem],
                             category_id=names[tbs] + 1, iscrowd=0,
                             bbox=[pt[0] - 20, pt[1] - 20, 40, 40],
                             area=1600., point=pt, bethesda_class=tbs,
                             cric_cell_id=int(row['cell_id'])))
    path = tmp_path / 'cric_abnormal5.json'
    path.write_text(json.dumps(dict(
        images=list(images.values()), annotations=anns,
        categories=[dict(id=k + 1, name=n) for n, k in names.items()])))
    return str(path), list(images.values()), anns, tuple(names)


def test_real_cric_points(shared_data, tmp_path):
    """On the real CRIC marks: boxes on every abnormal mark with the right
    class find every cell; boxes on every marked cell called abnormal
    (class-blind) keep recall 1 and lose exactly the NILM marks in
    precision."""
    ann, images, anns, classes = _cric_coco(shared_data, tmp_path)
    n_abn = len(anns)
    n_nilm = sum(len(i['other_points']) for i in images)
    # 2181 and 3817 in the shared copy
    assert n_abn > 2000 and n_nilm > 3000
    by_img = {i['id']: [] for i in images}
    for a in anns:
        x, y = a['point']
        by_img[a['image_id']].append(([x - 20, y - 20, x + 20, y + 20], .9,
                                      a['category_id'] - 1))
    res = _run(PointHitMetric(ann_file=ann), dets=by_img, classes=classes,
               shape=(510, 688))
    assert res['point/abnormal/num_points'] == n_abn
    assert res['point/abnormal/recall@0.5'] == 1.0
    assert res['point/abnormal/precision@0.5'] == 1.0
    assert res['point/abnormal/AP'] == pytest.approx(1.0)
    for c in classes:
        assert res[f'point/{c}/recall@0.5'] == 1.0, c
        assert res[f'point/{c}/precision@0.5'] == 1.0, c
    # add a lower-scoring 'HSIL' box on every NILM mark
    for i in images:
        for o in i['other_points']:
            x, y = o['point']
            by_img[i['id']].append(([x - 20, y - 20, x + 20, y + 20], .8, 3))
    res = _run(PointHitMetric(ann_file=ann), dets=by_img, classes=classes,
               shape=(510, 688))
    assert res['point/abnormal/recall@0.5'] == 1.0
    assert res['point/abnormal/fp@0.5'] == n_nilm
    assert res['point/abnormal/precision@0.5'] == \
        pytest.approx(n_abn / (n_abn + n_nilm))
    # those NILM boxes that reach no abnormal mark are the "on NILM" ones;
    # the rest cover an already-found abnormal cell (duplicates)
    assert 0 < res['point/abnormal/on_nilm@0.5'] <= n_nilm
    assert res['point/abnormal/on_unmarked@0.5'] == 0
    assert res['point/abnormal/sens@0.5fppi'] == 1.0   # all hits score .9
