"""Evaluate the slide call on a folder of slides processed by
``tools/slide_infer.py``.

The slide score comes either from the reports (``--aggregator``: the
``slide_scores`` entry of ``<slide>/report.json``; for ``max`` /
``topk_mean`` it is computed from ``cells_topk.npz`` when a report lacks
it) or from a trained slide MIL model (``--mil-config`` +
``--mil-checkpoint``) applied to the bags ``<slide>/cells_topk.npz``.

Reported (JSON ``--out`` and a table): slide ROC-AUC, sensitivity at
specificity 0.9 (and ``--spec``), the triage share at zero missed positives
(share of all slides scored below the lowest positive), counts and, with
``--cell-gt`` (COCO JSON whose image ``file_name`` stems are the slide
names, boxes in level-0 px), the top-k hit rate: share of positive slides
with an abnormal ground-truth box matched by one of their ``--topk``
highest-scoring cells (IoU >= ``--iou-thr`` or the cell centre inside the
box). Ground-truth categories named in ``--normal-classes`` are not
abnormal. All values are fractions in [0, 1].

Example::

    python tools/slide/eval_slides.py work_dirs/slides_test \\
        --labels data/test_slides.csv --aggregator max \\
        --cell-gt data/test_cells.json --out work_dirs/eval_max.json
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from calibrate_thresholds import (is_failed, join_labels,  # noqa: E402
                                  read_reports, report_score)

from cervdet.datasets.slide_bag_dataset import (BAG_FILE,  # noqa: E402
                                                load_slide_bag)
from cervdet.evaluation.metrics.slide_screening_metric import (  # noqa: E402
    screening_summary, sensitivity_at_specificity, topk_hit_rate)

SCORE_AGGREGATORS = {'max': dict(type='MaxScoreAggregator'),
                     'topk_mean': dict(type='TopKMeanAggregator', k=10)}


def box_hits(cells: np.ndarray, gt: np.ndarray,
             iou_thr: float = 0.3) -> np.ndarray:
    """Which cells match an abnormal ground-truth box.

    Args:
        cells (np.ndarray): float [k, 4] xyxy cell boxes.
        gt (np.ndarray): float [M, 4] xyxy abnormal ground-truth boxes.
        iou_thr (float): IoU of a match.

    Returns:
        np.ndarray: bool [k], True when IoU >= ``iou_thr`` with a GT box or
        the cell centre lies inside one (borders included).
    """
    cells = np.asarray(cells, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    if not len(cells) or not len(gt):
        return np.zeros(len(cells), bool)
    lt = np.maximum(cells[:, None, :2], gt[None, :, :2])
    rb = np.minimum(cells[:, None, 2:], gt[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_c = np.prod(np.clip(cells[:, 2:] - cells[:, :2], 0, None), 1)
    area_g = np.prod(np.clip(gt[:, 2:] - gt[:, :2], 0, None), 1)
    union = area_c[:, None] + area_g[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.)
    cx = (cells[:, 0] + cells[:, 2]) / 2
    cy = (cells[:, 1] + cells[:, 3]) / 2
    inside = ((cx[:, None] >= gt[None, :, 0]) & (cx[:, None] <= gt[None, :, 2])
              & (cy[:, None] >= gt[None, :, 1])
              & (cy[:, None] <= gt[None, :, 3]))
    return ((iou >= iou_thr) | inside).any(axis=1)


def load_cell_gt(path: str, normal_classes: Sequence[str]
                 ) -> Dict[str, np.ndarray]:
    """Abnormal ground-truth boxes per slide from a COCO JSON.

    Returns:
        dict: slide name (``file_name`` stem) -> float [M, 4] xyxy.
    """
    with open(path, encoding='utf-8') as f:
        coco = json.load(f)
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'{path}: not COCO (no "{key}")')
    normal = {c.lower() for c in normal_classes}
    abnormal = {int(c['id']) for c in coco['categories']
                if str(c['name']).lower() not in normal}
    stem = {int(i['id']): osp.splitext(osp.basename(i['file_name']))[0]
            for i in coco['images']}
    boxes: Dict[str, list] = {s: [] for s in stem.values()}
    for a in coco['annotations']:
        if int(a['category_id']) in abnormal:
            x, y, w, h = (float(v) for v in a['bbox'])
            boxes[stem[int(a['image_id'])]].append([x, y, x + w, y + h])
    return {s: np.array(b, np.float64).reshape(-1, 4)
            for s, b in boxes.items()}


def bag_dirs(out_dir: str) -> Dict[str, str]:
    """slide name -> its folder (name from report.json, else folder)."""
    try:
        reports = read_reports(out_dir)
        return {name: rep['_dir'] for name, rep in reports.items()}
    except FileNotFoundError:
        return {d: osp.join(out_dir, d) for d in sorted(os.listdir(out_dir))
                if osp.isfile(osp.join(out_dir, d, BAG_FILE))}


def aggregator_scores(out_dir: str, name: str) -> Dict[str, float]:
    """Scores of ``name`` from the reports (or from the bags)."""
    import torch
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    try:
        reports = read_reports(out_dir)
    except FileNotFoundError:
        reports = {}
    dirs = bag_dirs(out_dir)
    out, agg = {}, None
    for slide in sorted(set(reports) | set(dirs)):
        s = report_score(reports[slide], name) if slide in reports else None
        if slide in reports and is_failed(reports[slide]):
            continue  # a failed slide has no score (see --skip-missing)
        if s is None:
            if name not in SCORE_AGGREGATORS or slide not in dirs:
                where = reports[slide]['_path'] if slide in reports else slide
                raise ValueError(f'{where}: no slide_scores[{name!r}]; choose '
                                 'another --aggregator (or max / topk_mean, '
                                 'computed from cells_topk.npz)')
            if agg is None:
                import cervdet  # noqa: F401
                with DefaultScope.overwrite_default_scope('mmpretrain'):
                    agg = MODELS.build(SCORE_AGGREGATORS[name])
            bag = load_slide_bag(osp.join(dirs[slide], BAG_FILE))
            sc = torch.from_numpy(bag['scores'])[None]
            s = float(agg(sc, torch.ones_like(sc, dtype=torch.bool))[0])
        out[slide] = s
    return out


def mil_scores(out_dir: str, config: str, checkpoint: str,
               device: str = 'cpu', batch_size: int = 16) -> Dict[str, float]:
    """Slide scores of a trained :class:`SlideMILClassifier`."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import cervdet  # noqa: F401
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.to(device).eval()
    dirs = bag_dirs(out_dir)
    if not dirs:
        raise FileNotFoundError(f'{out_dir} holds no <slide>/{BAG_FILE}')
    names, out = sorted(dirs), {}
    from tqdm import tqdm
    for i in tqdm(range(0, len(names), batch_size), desc='slides',
                  unit='batch', disable=not sys.stderr.isatty()):
        chunk = names[i:i + batch_size]
        bags = [load_slide_bag(osp.join(dirs[n], BAG_FILE)) for n in chunk]
        inputs = [dict(scores=torch.from_numpy(b['scores']),
                       feats=torch.from_numpy(b['feats']),
                       bboxes=torch.from_numpy(b['bboxes'])) for b in bags]
        samples = [DataSample(metainfo=dict(slide=n)) for n in chunk]
        with torch.no_grad():
            data = model.data_preprocessor(
                dict(inputs=inputs, data_samples=samples))
            preds = model(**data, mode='predict')
        out.update({n: float(p.slide_score) for n, p in zip(chunk, preds)})
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Evaluate the slide call.')
    p.add_argument('out_dir', help='the --out-dir of tools/slide_infer.py')
    p.add_argument('--labels', required=True, help='"slide,label" CSV')
    p.add_argument('--aggregator', default=None,
                   help='slide_scores entry of report.json (max, topk_mean, '
                        '...)')
    p.add_argument('--mil-config', default=None)
    p.add_argument('--mil-checkpoint', default=None)
    p.add_argument('--negative-labels', default='NILM,negative',
                   help='labels of negative slides (comma separated)')
    p.add_argument('--cell-gt', default=None,
                   help='COCO JSON of cell boxes per slide (level-0 px)')
    p.add_argument('--normal-classes', default='NILM,normal,negative',
                   help='GT categories that are not abnormal')
    p.add_argument('--topk', type=int, default=10)
    p.add_argument('--iou-thr', type=float, default=0.3)
    p.add_argument('--spec', type=float, default=0.9,
                   help='extra specificity for the sensitivity')
    p.add_argument('--device', default='cpu')
    p.add_argument('--skip-missing', action='store_true',
                   help='ignore labelled slides without a result')
    p.add_argument('--out', required=True, help='metrics JSON')
    p.add_argument('--force-overwrite', action='store_true')
    return p.parse_args(argv)


def _fmt(v) -> str:
    return 'nan' if v is None or (isinstance(v, float) and math.isnan(v)) \
        else (f'{v:.4f}' if isinstance(v, float) else str(v))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.force_overwrite:
        print(f'error: {args.out} exists; refusing to overwrite it. Pass '
              '--force-overwrite to replace it, or choose another --out.',
              file=sys.stderr)
        return 2
    use_mil = args.mil_config is not None or args.mil_checkpoint is not None
    if use_mil == (args.aggregator is not None):
        print('error: give either --aggregator NAME or --mil-config and '
              '--mil-checkpoint', file=sys.stderr)
        return 2
    if use_mil and not (args.mil_config and args.mil_checkpoint):
        print('error: --mil-config needs --mil-checkpoint (and vice versa)',
              file=sys.stderr)
        return 2
    if not osp.isdir(args.out_dir):
        print(f'error: {args.out_dir} is not a folder', file=sys.stderr)
        return 2
    negatives = {s.strip().lower() for s in args.negative_labels.split(',')}
    try:
        scores = (mil_scores(args.out_dir, args.mil_config,
                             args.mil_checkpoint, args.device)
                  if use_mil else
                  aggregator_scores(args.out_dir, args.aggregator))
        slides, labels, values, missing = join_labels(
            scores, args.labels, args.skip_missing)
        y = np.array([lab.lower() not in negatives for lab in labels])
        summ = screening_summary(y, values, 0.9)
        res = dict(
            tool='tools/slide/eval_slides.py', out_dir=osp.abspath(
                args.out_dir), labels=osp.abspath(args.labels),
            source=('mil:' + args.mil_checkpoint) if use_mil
            else args.aggregator,
            num_slides=len(slides), num_positive=summ['num_positive'],
            num_negative=summ['num_negative'], auc=summ['auc'],
            sensitivity_at_spec={'0.9': summ['sensitivity']},
            threshold_at_spec={'0.9': summ['threshold']},
            triage_share_at_full_sensitivity=summ['triage_share'],
            skipped_missing=missing)
        if abs(args.spec - 0.9) > 1e-12:
            sens, thr = sensitivity_at_specificity(y, values, args.spec,
                                                   return_threshold=True)
            res['sensitivity_at_spec'][f'{args.spec:g}'] = sens
            res['threshold_at_spec'][f'{args.spec:g}'] = thr
        if args.cell_gt:
            gt = load_cell_gt(args.cell_gt, [
                c.strip() for c in args.normal_classes.split(',')])
            dirs = bag_dirs(args.out_dir)
            hits, no_gt = [], []
            for slide, pos in zip(slides, y):
                if not pos:
                    continue
                if slide not in gt or not len(gt[slide]) or slide not in dirs:
                    no_gt.append(slide)
                    continue
                bag = load_slide_bag(osp.join(dirs[slide], BAG_FILE))
                order = np.argsort(-bag['scores'], kind='stable')
                top = bag['bboxes'][order[:args.topk]]
                hits.append(box_hits(top, gt[slide], args.iou_thr))
            res[f'top{args.topk}_hit_rate'] = topk_hit_rate(hits, args.topk)
            res['hit_rate_slides'] = len(hits)
            res['hit_rate_slides_without_gt'] = no_gt
        res['per_slide'] = [dict(slide=s, label=lab, positive=bool(p),
                                 score=float(v))
                            for s, lab, p, v in zip(slides, labels, y, values)]
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(res, f, indent=2)
    rows = [('slides (pos / neg)', f'{res["num_slides"]} ('
             f'{res["num_positive"]} / {res["num_negative"]})'),
            ('slide AUC', _fmt(res['auc']))]
    for k, v in res['sensitivity_at_spec'].items():
        rows.append((f'sensitivity @ spec {k}', _fmt(v)))
    rows.append(('triage share @ 0 missed', _fmt(
        res['triage_share_at_full_sensitivity'])))
    if args.cell_gt:
        rows.append((f'top-{args.topk} hit rate ({res["hit_rate_slides"]} '
                     'slides)', _fmt(res[f'top{args.topk}_hit_rate'])))
    width = max(len(r[0]) for r in rows)
    print(f'slide call: {res["source"]}')
    for k, v in rows:
        print(f'{k:<{width}}  {v}')
    print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
