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
that threshold yields on the negative (NILM) slides
(:func:`cervdet.evaluation.slide_eval.calibrate_slide_thresholds`). The
inferencer calls a slide's grade with
:func:`cervdet.evaluation.metrics.slide_screening_metric.call_grade`: the
highest grade whose threshold is reached.

Example::

    python tools/slide/calibrate_thresholds.py work_dirs/slides_val \\
        --labels data/val_slides.csv --aggregator topk_mean \\
        --out work_dirs/thresholds.json
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.evaluation.metrics.slide_screening_metric import (  # noqa: E402
    BETHESDA_SLIDE_GRADES,
)
from cervdet.evaluation.slide_eval import (  # noqa: E402
    calibrate_slide_thresholds,
)


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
    try:
        out = calibrate_slide_thresholds(
            args.scores, args.labels, args.aggregator,
            args.grades.split(','), args.target_sensitivity,
            args.skip_missing)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if out['aggregator'] is None:
        out['aggregator'] = 'max'
        print('note: the scores do not name their aggregator; the JSON '
              'records "max" (pass --aggregator to name it)')
    grades, table = out['grades'], out['thresholds']
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
    print(f'{out["num_slides"].get(grades[0], 0)} {grades[0]} slides; '
          f'thresholds written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
