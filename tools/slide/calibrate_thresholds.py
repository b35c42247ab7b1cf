"""Calibrate per-grade slide-score thresholds on validation slides.

SCORES is a CSV ``slide,score`` (header) or the ``--out-dir`` of
``tools/slide_infer.py`` (``<slide>/report.json`` files with
``{"slide": name, "slide_scores": {"max": s, "topk_mean": s, ...}}``; pick
the aggregator with ``--aggregator``; a report with an ``"error"`` entry is
a failed slide: it has no score, so a labelled failed slide stops the tool
unless ``--skip-missing``). LABELS is a CSV ``slide,label`` whose
labels are Bethesda grades (``--grades``, ordered, negative first; default
``NILM,ASC-US,LSIL,ASC-H,HSIL,SCC``).

For every grade ``g`` above the negative one the threshold is the highest
score giving sensitivity >= ``--target-sensitivity`` (default 1.0: no missed
slide) on the slides of grade >= g; the JSON also gives the specificity
that threshold yields on the negative (NILM) slides. The inferencer calls a
slide's grade with
:func:`cervdet.evaluation.metrics.slide_screening_metric.call_grade`
(re-exported here): the highest grade whose threshold is reached.

Example::

    python tools/slide/calibrate_thresholds.py work_dirs/slides_val \\
        --labels data/val_slides.csv --aggregator topk_mean \\
        --out work_dirs/thresholds.json
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.slide_bag_dataset import read_slide_labels  # noqa: E402
from cervdet.evaluation.metrics.slide_screening_metric import (  # noqa: E402
    BETHESDA_SLIDE_GRADES, calibrate_grade_thresholds, call_grade)

__all__ = ['read_slide_scores', 'read_reports', 'report_score', 'is_failed',
           'join_labels', 'call_grade', 'main']


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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Per-grade slide thresholds from validation slides.')
    p.add_argument('scores', help='"slide,score" CSV or tools/slide_infer.py '
                                  'output folder')
    p.add_argument('--labels', required=True,
                   help='"slide,label" CSV with Bethesda grades')
    p.add_argument('--aggregator', default=None,
                   help='slide_scores entry of report.json (e.g. max, '
                        'topk_mean, attention_mil); needed when reports hold '
                        'several; recorded in the JSON for tools/'
                        'slide_infer.py --thresholds (default max for a CSV)')
    p.add_argument('--grades', default=','.join(BETHESDA_SLIDE_GRADES),
                   help='ordered grades, negative first')
    p.add_argument('--target-sensitivity', type=float, default=1.0)
    p.add_argument('--out', required=True, help='thresholds JSON')
    p.add_argument('--skip-missing', action='store_true',
                   help='ignore labelled slides without a score')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace an existing --out')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.force_overwrite:
        print(f'error: {args.out} exists; refusing to overwrite it. Pass '
              '--force-overwrite to replace it, or choose another --out.',
              file=sys.stderr)
        return 2
    grades = [g.strip() for g in args.grades.split(',') if g.strip()]
    if len(grades) < 2 or len(set(grades)) != len(grades):
        print(f'error: --grades needs >= 2 distinct grades; got {grades}',
              file=sys.stderr)
        return 2
    try:
        scores = read_slide_scores(args.scores, args.aggregator)
        slides, labels, values, missing = join_labels(
            scores, args.labels, args.skip_missing)
        bad = sorted({lab for lab in labels if lab not in grades})
        if bad:
            raise ValueError(f'{args.labels}: labels {bad} are not in '
                             f'--grades {grades}; fix the CSV or --grades')
        idx = [grades.index(lab) for lab in labels]
        table = calibrate_grade_thresholds(values, idx, grades,
                                           args.target_sensitivity)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    counts = {g: idx.count(i) for i, g in enumerate(grades)}
    aggregator = args.aggregator
    if aggregator is None and osp.isdir(args.scores):
        keys = sorted(next(iter(read_reports(args.scores).values())).get(
            'slide_scores') or {})
        aggregator = keys[0] if len(keys) == 1 else None
    if aggregator is None:
        aggregator = 'max'
        print('note: the scores do not name their aggregator; the JSON '
              'records "max" (pass --aggregator to name it)')
    out = dict(
        tool='tools/slide/calibrate_thresholds.py',
        scores_source=osp.abspath(args.scores), labels=osp.abspath(
            args.labels), aggregator=aggregator, grades=grades,
        negative=grades[0], target_sensitivity=args.target_sensitivity,
        num_slides=counts, skipped_missing=missing, thresholds=table)
    d = osp.dirname(osp.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(out, f, indent=2)
    print(f'{"grade":<8} {">=g slides":>10} {"threshold":>10} '
          f'{"sens":>6} {"spec " + grades[0]:>10}')
    for g, e in table.items():
        fmt = (lambda v: '-' if v is None else f'{v:.4f}')
        print(f'{g:<8} {e["num_slides"]:>10} {fmt(e["threshold"]):>10} '
              f'{fmt(e["sensitivity"]):>6} '
              f'{fmt(e["specificity_negative"]):>10}')
    print(f'{counts.get(grades[0], 0)} {grades[0]} slides; thresholds '
          f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
