"""Cost of PointHitMetric beside mmdet's CocoMetric on the same detections.

Usage:
    python benchmarks/bench_point_metric.py [--images 100] [--dets 100]
        [--points 30] [--other-points 10] [--repeats 3] [--seed 0] [--smoke]

Side by side in one process, on one synthetic evaluation set (the cost of
matching does not depend on the pixels, so no image is read):

- ground truth: ``--images`` fields of 688x510 px (the stored CRIC frame),
  each with ``--points`` marked abnormal cells (random nucleus points, random
  ``abnormal5`` class, a 60x60 box around each, as the CRIC converter
  writes them) and ``--other-points`` NILM points in ``other_points``;
  written as a COCO file in a temporary folder;
- detections: ``--dets`` per image, half around the marked points (box
  jittered, right class 70 % of the time), half at random places, random
  scores; given to both metrics as the data-sample dicts that mmengine's
  ``Evaluator`` hands them.

Timed per metric (median of ``--repeats`` runs, a fresh metric each): all
``process`` calls (one per image, as in a test loop) and ``evaluate``
(``compute_metrics``: for CocoMetric pycocotools' ``COCOeval`` evaluate +
accumulate + summarize, for PointHitMetric the sorting, FROC and AP).
Printed: seconds, detections per second and the PointHitMetric / CocoMetric
time ratio. Wall time on a shared machine: the load average is printed.
``--smoke`` runs tiny sizes (4 images, 10 detections) once.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from cervdet.datasets.classes import BETHESDA_CLASSES as CLASSES  # noqa: E402

W, H, BOX = 688, 510, 60.


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--images', type=int, default=100)
    p.add_argument('--dets', type=int, default=100,
                   help='detections per image')
    p.add_argument('--points', type=int, default=30,
                   help='marked abnormal cells (boxes) per image')
    p.add_argument('--other-points', type=int, default=10,
                   help='NILM points (other_points) per image')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--smoke', action='store_true',
                   help='tiny sizes, one run (for the test suite)')
    args = p.parse_args(argv)
    if args.smoke:
        args.images, args.dets, args.points = 4, 10, 3
        args.other_points, args.repeats = 2, 1
    return args


def make_set(args, folder):
    """COCO file of the points and the per-image data-sample dicts."""
    import numpy as np
    import torch
    rng = np.random.default_rng(args.seed)
    images, anns, samples = [], [], []
    for i in range(1, args.images + 1):
        pts = rng.uniform([0, 0], [W, H], (args.points, 2))
        cls = rng.integers(len(CLASSES), size=args.points)
        other = rng.uniform([0, 0], [W, H], (args.other_points, 2))
        images.append(dict(
            id=i, file_name=f'{i:05d}.jpg', width=W, height=H,
            other_points=[dict(point=p.tolist(), bethesda_class='NILM',
                               cric_cell_id=-1) for p in other]))
        for p, c in zip(pts, cls):
            x1, y1 = max(p[0] - BOX / 2, 0.), max(p[1] - BOX / 2, 0.)
            x2, y2 = min(p[0] + BOX / 2, W), min(p[1] + BOX / 2, H)
            anns.append(dict(
                id=len(anns) + 1, image_id=i, category_id=int(c) + 1,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                iscrowd=0, point=p.tolist(), bethesda_class=CLASSES[c],
                cric_cell_id=len(anns) + 1))
        near = args.dets // 2
        idx = rng.integers(max(args.points, 1), size=near)
        centre = (pts[idx] if args.points else rng.uniform([0, 0], [W, H],
                                                           (near, 2)))
        centre = np.concatenate([
            centre + rng.normal(0, 8, (near, 2)),
            rng.uniform([0, 0], [W, H], (args.dets - near, 2))])
        size = rng.uniform(40, 80, (args.dets, 1))
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
        boxes = np.clip(boxes, 0, [W, H, W, H])
        labels = rng.integers(len(CLASSES), size=args.dets)
        if args.points:
            right = rng.random(near) < 0.7
            labels[:near][right] = cls[idx][right]
        samples.append(dict(
            img_id=i, ori_shape=(H, W), img_path=f'{i:05d}.jpg',
            pred_instances=dict(
                bboxes=torch.as_tensor(boxes, dtype=torch.float32),
                scores=torch.as_tensor(rng.random(args.dets),
                                       dtype=torch.float32),
                labels=torch.as_tensor(labels, dtype=torch.long))))
    ann_file = osp.join(folder, 'points.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=k + 1, name=n)
                                   for k, n in enumerate(CLASSES)]), f)
    return ann_file, samples


def time_metric(cfg, samples, repeats):
    """Median (process s, compute s) of ``repeats`` runs of fresh metrics."""
    from mmdet.registry import METRICS
    proc_t, comp_t = [], []
    for _ in range(repeats):
        metric = METRICS.build(cfg)
        metric.dataset_meta = dict(classes=CLASSES)
        t0 = time.perf_counter()
        for s in samples:
            metric.process({}, [s])
        t1 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools
            res = metric.evaluate(len(samples))
        t2 = time.perf_counter()
        proc_t.append(t1 - t0)
        comp_t.append(t2 - t1)
    return statistics.median(proc_t), statistics.median(comp_t), res


def main(argv=None):
    args = parse_args(argv)
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger

    import cervdet  # noqa: F401  (registers PointHitMetric)
    register_all_modules(init_default_scope=False)
    # the metrics' own tables go to a quiet logger
    MMLogger.get_instance('bench_point_metric', log_level='WARNING')
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        ann_file, samples = make_set(args, tmp)
        n_dets = args.images * args.dets
        n_points = args.images * (args.points + args.other_points)
        rows = []
        for name, cfg in (
                ('PointHitMetric', dict(type='PointHitMetric',
                                        ann_file=ann_file)),
                ('CocoMetric', dict(type='CocoMetric', ann_file=ann_file,
                                    metric='bbox'))):
            p, c, res = time_metric(cfg, samples, args.repeats)
            rows.append((name, p, c, res))
    coco_total = rows[1][1] + rows[1][2]
    head = ['metric', 'images', 'detections', 'points', 'process s',
            'compute s', 'total s', 'detections/s', 'x CocoMetric']
    print(f'{args.images} images x {args.dets} detections, '
          f'{args.points} boxed + {args.other_points} NILM points per image;'
          f' median of {args.repeats}; torch threads '
          f'{__import__("torch").get_num_threads()}; load average '
          f'{load0:.2f} -> {os.getloadavg()[0]:.2f}')
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '|'.join('---' for _ in head) + '|')
    for name, p, c, _ in rows:
        total = p + c
        print(f'| {name} | {args.images} | {n_dets} | {n_points} | {p:.3f} |'
              f' {c:.3f} | {total:.3f} | {n_dets / total:.0f} |'
              f' {total / coco_total:.2f} |')
    point = rows[0][3]
    print('PointHitMetric on this set: abnormal recall@0.5 '
          f"{point['point/abnormal/recall@0.5']:.3f}, AP "
          f"{point['point/abnormal/AP']:.3f}; CocoMetric bbox_mAP_50 "
          f"{rows[1][3]['coco/bbox_mAP_50']:.3f} (synthetic detections: "
          'numbers only show both metrics ran, not a detector)')


if __name__ == '__main__':
    main()
