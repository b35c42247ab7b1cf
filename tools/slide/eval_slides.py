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

The logic is :func:`cervdet.evaluation.slide_eval.evaluate_slides`.

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
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.evaluation.slide_eval import evaluate_slides  # noqa: E402


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
    try:
        res = evaluate_slides(
            args.out_dir, args.labels, aggregator=args.aggregator,
            mil_config=args.mil_config, mil_checkpoint=args.mil_checkpoint,
            negative_labels=args.negative_labels.split(','),
            cell_gt=args.cell_gt,
            normal_classes=args.normal_classes.split(','), topk=args.topk,
            iou_thr=args.iou_thr, spec=args.spec, device=args.device,
            skip_missing=args.skip_missing)
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
