"""Evaluation and calibration of the slide call on slide_infer outputs.

The logic of ``tools/slide/eval_slides.py`` (:func:`evaluate_slides`: slide
ROC-AUC, sensitivity at a specificity, triage share at zero missed
positives, top-k hit rate against COCO cell boxes) and
``tools/slide/calibrate_thresholds.py`` (:func:`calibrate_slide_thresholds`:
per-grade thresholds, read by ``tools/slide_infer.py --thresholds``). Slide
scores come from the ``<slide>/report.json`` files of the
``tools/slide_infer.py`` output folder (``slide_scores``; a report with an
``"error"`` entry is a failed slide without a score), from a
``slide,score`` CSV, or from a trained :class:`SlideMILClassifier` applied
to the bags ``<slide>/cells_topk.npz``.
"""
import csv
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tqdm import tqdm

from ..datasets.slide_bag_dataset import BAG_FILE, load_slide_bag, read_slide_labels
from .metrics.slide_screening_metric import (
    BETHESDA_SLIDE_GRADES,
    calibrate_grade_thresholds,
    screening_summary,
    sensitivity_at_specificity,
    topk_hit_rate,
)

SCORE_AGGREGATORS = {'max': dict(type='MaxScoreAggregator'),
                     'topk_mean': dict(type='TopKMeanAggregator', k=10)}


def read_reports(out_dir: str) -> Dict[str, dict]:
    """``report.json`` of every slide of a slide_infer output folder.

    Returns:
        dict: slide name -> (report dict, with ``_path`` and ``_dir`` added).
    """
    paths = sorted(glob.glob(osp.join(out_dir, '*', 'report.json')))
    if not paths:
        raise FileNotFoundError(
            f'{out_dir} holds no <slide>/report.json: give the --out-dir of '
            'tools/slide_infer.py (or a "slide,score" CSV)')
    reports = {}
    for p in paths:
        try:
            with open(p, encoding='utf-8') as f:
                rep = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(
                f'{p}: cannot read the slide report ({e}); re-run '
                'tools/slide_infer.py on this slide') from e
        name = str(rep.get('slide') or osp.basename(osp.dirname(p)))
        if name in reports:
            raise ValueError(f'{p}: slide {name!r} also reported in '
                             f'{reports[name]["_path"]}')
        rep['_path'], rep['_dir'] = p, osp.dirname(p)
        reports[name] = rep
    return reports


def is_failed(rep: dict) -> bool:
    """A report of a slide that slide_infer could not process."""
    return bool(rep.get('error')) or rep.get('status') == 'failed'


def report_score(rep: dict, aggregator: Optional[str]) -> Optional[float]:
    """The slide score of ``aggregator`` in a report (None if absent or
    when the report records a failed slide, ``"error"``)."""
    if is_failed(rep):
        return None
    scores = rep.get('slide_scores') or {}
    if aggregator is None:
        if len(scores) == 1:
            return float(next(iter(scores.values())))
        if 'slide_score' in rep and not isinstance(rep['slide_score'], dict):
            return float(rep['slide_score'])
        raise ValueError(
            f'{rep["_path"]}: slide_scores {sorted(scores)}: choose one with '
            '--aggregator')
    if aggregator in scores and scores[aggregator] is not None:
        return float(scores[aggregator])
    return None


def read_slide_scores(path: str,
                      aggregator: Optional[str] = None) -> Dict[str, float]:
    """Slide scores from a ``slide,score`` CSV or a slide_infer out dir.

    Raises:
        ValueError: On a malformed CSV, a report without the aggregator.
    """
    if osp.isdir(path):
        out = {}
        for name, rep in read_reports(path).items():
            s = report_score(rep, aggregator)
            if s is None and is_failed(rep):
                continue  # failed slide: missing (see --skip-missing)
            if s is None:
                raise ValueError(
                    f'{rep["_path"]}: no slide_scores[{aggregator!r}] (has '
                    f'{sorted(rep.get("slide_scores") or {})}); choose '
                    'another --aggregator')
            out[name] = s
        return out
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such scores CSV or folder')
    out = {}
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        if not {'slide', 'score'} <= set(reader.fieldnames or []):
            raise ValueError(f'{path}: the first line must be the header '
                             f'"slide,score"; got {reader.fieldnames}')
        for line, row in enumerate(reader, start=2):
            try:
                out[row['slide'].strip()] = float(row['score'])
            except (TypeError, ValueError) as e:
                raise ValueError(f'{path}, line {line}: bad score '
                                 f'{row.get("score")!r}') from e
    if not out:
        raise ValueError(f'{path} lists no slide score')
    return out


def join_labels(scores: Dict[str, float], labels_csv: str,
                skip_missing: bool = False) -> Tuple[List[str], List[str],
                                                     List[float], List[str]]:
    """Slides of the labels CSV with their score.

    Returns:
        tuple: ``(slides, labels, scores, missing)`` in CSV order.
    """
    rows = read_slide_labels(labels_csv)
    missing = [r['slide'] for r in rows if r['slide'] not in scores]
    if missing and not skip_missing:
        raise ValueError(
            f'{len(missing)} slides of {labels_csv} have no slide score, e.g. '
            f'{missing[:5]}: run tools/slide_infer.py on them, remove them '
            'from the CSV, or pass --skip-missing')
    rows = [r for r in rows if r['slide'] in scores]
    if not rows:
        raise ValueError(f'no slide of {labels_csv} has a score')
    return ([r['slide'] for r in rows], [r['label'] for r in rows],
            [scores[r['slide']] for r in rows], missing)


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
    iou = bbox_overlaps(torch.from_numpy(cells),
                        torch.from_numpy(gt)).numpy()
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
    """slide name -> its folder (name from report.json, else folder).

    Args:
        out_dir (str): The ``--out-dir`` of ``tools/slide_infer.py``.
    """
    try:
        reports = read_reports(out_dir)
        return {name: rep['_dir'] for name, rep in reports.items()}
    except FileNotFoundError:
        return {d: osp.join(out_dir, d) for d in sorted(os.listdir(out_dir))
                if osp.isfile(osp.join(out_dir, d, BAG_FILE))}


def aggregator_scores(out_dir: str, name: str) -> Dict[str, float]:
    """Scores of ``name`` from the reports (or from the bags).

    Args:
        out_dir (str): The ``--out-dir`` of ``tools/slide_infer.py``.
        name (str): A ``slide_scores`` key of the reports; ``max`` and
            ``topk_mean`` are computed from ``cells_topk.npz`` when a report
            lacks them.

    Returns:
        dict: slide name -> score (failed slides left out).
    """
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
                with DefaultScope.overwrite_default_scope('mmpretrain'):
                    agg = MODELS.build(SCORE_AGGREGATORS[name])
            bag = load_slide_bag(osp.join(dirs[slide], BAG_FILE))
            sc = torch.from_numpy(bag['scores'])[None]
            s = float(agg(sc, torch.ones_like(sc, dtype=torch.bool))[0])
        out[slide] = s
    return out


def mil_scores(out_dir: str, config: str, checkpoint: str,
               device: str = 'cpu', batch_size: int = 16) -> Dict[str, float]:
    """Slide scores of a trained :class:`SlideMILClassifier`.

    Args:
        out_dir (str): The ``--out-dir`` of ``tools/slide_infer.py``.
        config (str): The MIL model's config.
        checkpoint (str): Its checkpoint.
        device (str): ``cpu`` or ``cuda[:i]``.
        batch_size (int): Slides per forward pass.

    Returns:
        dict: slide name -> score.
    """
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.to(device).eval()
    dirs = bag_dirs(out_dir)
    if not dirs:
        raise FileNotFoundError(f'{out_dir} holds no <slide>/{BAG_FILE}')
    names, out = sorted(dirs), {}
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


def evaluate_slides(out_dir: str, labels: str,
                    aggregator: Optional[str] = None,
                    mil_config: Optional[str] = None,
                    mil_checkpoint: Optional[str] = None,
                    negative_labels: Sequence[str] = ('NILM', 'negative'),
                    cell_gt: Optional[str] = None,
                    normal_classes: Sequence[str] = ('NILM', 'normal',
                                                     'negative'),
                    topk: int = 10, iou_thr: float = 0.3, spec: float = 0.9,
                    device: str = 'cpu', skip_missing: bool = False) -> Dict:
    """Slide-call metrics of a folder of slide_infer outputs.

    The slide score comes from the reports (``aggregator``) or from a
    trained MIL model (``mil_config`` + ``mil_checkpoint``) on the bags.

    Args:
        out_dir (str): The ``--out-dir`` of ``tools/slide_infer.py``.
        labels (str): ``slide,label`` CSV.
        aggregator (str, optional): ``slide_scores`` entry of the reports.
        mil_config (str, optional): MIL model config.
        mil_checkpoint (str, optional): MIL model checkpoint.
        negative_labels (Sequence[str]): Labels of negative slides.
        cell_gt (str, optional): COCO JSON of cell boxes per slide (level-0
            px) for the top-k hit rate.
        normal_classes (Sequence[str]): GT categories that are not abnormal.
        topk (int): Cells per slide of the hit rate.
        iou_thr (float): IoU of a hit (or the cell centre inside the box).
        spec (float): Extra specificity for the sensitivity.
        device (str): Device of the MIL model.
        skip_missing (bool): Ignore labelled slides without a result.

    Returns:
        dict: AUC, sensitivity / threshold at specificity 0.9 (and
        ``spec``), triage share at full sensitivity, counts, the top-k hit
        rate (with ``cell_gt``) and ``per_slide`` scores; fractions in
        [0, 1].

    Raises:
        ValueError: Inconsistent arguments, missing scores or labels.
        FileNotFoundError: Missing inputs.
    """
    use_mil = mil_config is not None or mil_checkpoint is not None
    if use_mil == (aggregator is not None):
        raise ValueError('give either --aggregator NAME or --mil-config and '
                         '--mil-checkpoint')
    if use_mil and not (mil_config and mil_checkpoint):
        raise ValueError('--mil-config needs --mil-checkpoint (and vice '
                         'versa)')
    if not osp.isdir(out_dir):
        raise ValueError(f'{out_dir} is not a folder')
    negatives = {s.strip().lower() for s in negative_labels}
    scores = (mil_scores(out_dir, mil_config, mil_checkpoint, device)
              if use_mil else aggregator_scores(out_dir, aggregator))
    slides, names, values, missing = join_labels(scores, labels,
                                                 skip_missing)
    y = np.array([lab.lower() not in negatives for lab in names])
    summ = screening_summary(y, values, 0.9)
    res = dict(
        tool='tools/slide/eval_slides.py', out_dir=osp.abspath(out_dir),
        labels=osp.abspath(labels),
        source=('mil:' + mil_checkpoint) if use_mil else aggregator,
        num_slides=len(slides), num_positive=summ['num_positive'],
        num_negative=summ['num_negative'], auc=summ['auc'],
        sensitivity_at_spec={'0.9': summ['sensitivity']},
        threshold_at_spec={'0.9': summ['threshold']},
        triage_share_at_full_sensitivity=summ['triage_share'],
        skipped_missing=missing)
    if abs(spec - 0.9) > 1e-12:
        sens, thr = sensitivity_at_specificity(y, values, spec,
                                               return_threshold=True)
        res['sensitivity_at_spec'][f'{spec:g}'] = sens
        res['threshold_at_spec'][f'{spec:g}'] = thr
    if cell_gt:
        gt = load_cell_gt(cell_gt, [c.strip() for c in normal_classes])
        dirs = bag_dirs(out_dir)
        hits, no_gt = [], []
        for slide, pos in zip(slides, y):
            if not pos:
                continue
            if slide not in gt or not len(gt[slide]) or slide not in dirs:
                no_gt.append(slide)
                continue
            bag = load_slide_bag(osp.join(dirs[slide], BAG_FILE))
            order = np.argsort(-bag['scores'], kind='stable')
            top = bag['bboxes'][order[:topk]]
            hits.append(box_hits(top, gt[slide], iou_thr))
        res[f'top{topk}_hit_rate'] = topk_hit_rate(hits, topk)
        res['hit_rate_slides'] = len(hits)
        res['hit_rate_slides_without_gt'] = no_gt
    res['per_slide'] = [dict(slide=s, label=lab, positive=bool(p),
                             score=float(v))
                        for s, lab, p, v in zip(slides, names, y, values)]
    return res


def calibrate_slide_thresholds(scores: str, labels: str,
                               aggregator: Optional[str] = None,
                               grades: Sequence[str] = BETHESDA_SLIDE_GRADES,
                               target_sensitivity: float = 1.0,
                               skip_missing: bool = False) -> Dict:
    """Per-grade slide-score thresholds from validation slides.

    For every grade ``g`` above the negative one the threshold is the
    highest score giving sensitivity >= ``target_sensitivity`` on the slides
    of grade >= g (:func:`calibrate_grade_thresholds`).

    Args:
        scores (str): ``slide,score`` CSV or a slide_infer output folder.
        labels (str): ``slide,label`` CSV of grades.
        aggregator (str, optional): ``slide_scores`` entry of the reports.
        grades (Sequence[str]): Ordered grades, negative first.
        target_sensitivity (float): Sensitivity each threshold keeps.
        skip_missing (bool): Ignore labelled slides without a score.

    Returns:
        dict: The thresholds JSON (``aggregator`` ``None`` when the scores
        do not name it: the caller records its default), with
        ``thresholds`` per grade and ``num_slides`` per grade.

    Raises:
        ValueError: Bad grades or labels, missing scores.
    """
    grades = [g.strip() for g in grades if g.strip()]
    if len(grades) < 2 or len(set(grades)) != len(grades):
        raise ValueError(f'--grades needs >= 2 distinct grades; got {grades}')
    values_of = read_slide_scores(scores, aggregator)
    slides, names, values, missing = join_labels(values_of, labels,
                                                 skip_missing)
    bad = sorted({lab for lab in names if lab not in grades})
    if bad:
        raise ValueError(f'{labels}: labels {bad} are not in '
                         f'--grades {grades}; fix the CSV or --grades')
    idx = [grades.index(lab) for lab in names]
    table = calibrate_grade_thresholds(values, idx, grades,
                                       target_sensitivity)
    counts = {g: idx.count(i) for i, g in enumerate(grades)}
    if aggregator is None and osp.isdir(scores):
        keys = sorted(next(iter(read_reports(scores).values())).get(
            'slide_scores') or {})
        aggregator = keys[0] if len(keys) == 1 else None
    return dict(
        tool='tools/slide/calibrate_thresholds.py',
        scores_source=osp.abspath(scores), labels=osp.abspath(labels),
        aggregator=aggregator, grades=grades, negative=grades[0],
        target_sensitivity=target_sensitivity, num_slides=counts,
        skipped_missing=missing, thresholds=table)


__all__ = ['read_reports', 'is_failed', 'report_score', 'read_slide_scores',
           'join_labels', 'box_hits', 'load_cell_gt', 'bag_dirs',
           'aggregator_scores', 'mil_scores', 'evaluate_slides',
           'calibrate_slide_thresholds', 'SCORE_AGGREGATORS']
