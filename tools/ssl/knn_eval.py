"""k-NN probing of frozen backbone features on labeled cell-crop sets.

The protocol of Stegmüller et al. (ISBI 2023) with DINO's weighted k-NN
(:mod:`cervdet.evaluation.knn`, on
``cervdet/evaluation/metrics/knn_metric.py``): pooled features of every crop
of a folder-per-class set, cosine similarity, vote weights ``exp(sim / T)``
with ``T = 0.07``, ``k`` from ``--topk`` (DINO's 10, 20, 100, 200; the
table shows the ``k`` of the best weighted F1, as the paper does); weighted
and class-wise F1 as mean +- std over ``--num-splits`` (4, the paper's "4
independent runs", Sec. 3.1) random stratified 75/25 splits. The paper's
runs also differ in their DINO model (one per stratified slide split):
``--runs NAME=BACKBONE,CKPT1,...,CKPT4`` pairs run ``s`` with split ``s`` and
model ``s``.

Protocols, for every feature source ("row") and every ``--data`` set:

* ``multi-class``: the set's own classes;
* ``binary``: negative / positive labels from :data:`BINARY_TABLES` (the
  k-NN is fitted on the binary labels);
* ``transfer A->B`` (``--transfer A:B``, ours): fitted on the binary labels
  of the train part of each split of A, tested on the test part of the same
  split of B (the samples the ``binary`` protocol of B tests on), so the
  numbers compare directly with B's within-set binary row;
* ``whole A+B->C`` (``--transfer-whole A+B:C``, the paper's Table 3): the
  k-NN is fitted on *every* sample of the source set(s) (``+`` joins sets,
  H+S) with binary labels and classifies every *positive* of the target;
  the sensitivity is reported (plus, ours, the specificity on the target's
  negatives when it has any). No split: mean +- std is over the models of
  a ``--runs`` row (one model gives std 0). The table shows the k with the
  best weighted F1 of the source's own binary k-NN (``--whole-k source``,
  our reading of "k ... maximizes the weighted F1": on a positives-only
  target that F1 only restates the sensitivity, and the largest k, voting
  the source's majority class, would always win); ``--whole-k target``
  shows the best sensitivity instead. The JSON has every k.

Binary mapping (:data:`BINARY_TABLES`; a set is matched by its class
folders, or give ``--negative NAME=cls1,cls2`` for another set):

=========  ===========================================  ============================
set        negative                                     positive
=========  ===========================================  ============================
herlev     normal_superficiel, normal_intermediate,     light_dysplastic,
           normal_columnar                              moderate_dysplastic,
                                                        severe_dysplastic,
                                                        carcinoma_in_situ
bethesda   NILM                                         ASC-US, ASC-H, LSIL, HSIL,
                                                        SCC
=========  ===========================================  ============================

Feature sources: ``--backbone`` is a preset (:data:`PRESETS`) or a config
whose ``model.backbone`` is built (``--backbone-key`` for another
attribute); ``--checkpoint`` (repeatable, one row each) is a
``tools/ssl/convert_backbone.py`` output or any MMEngine checkpoint
(``--checkpoint-prefix``; by default the prefix is found: none, the DINO
teacher's, then the student's); ``--random-init`` adds a random row;
``--row NAME=BACKBONE[,CKPT]`` adds any other (e.g. ImageNet weights you
have as a file). Example::

    python tools/ssl/knn_eval.py --backbone resnet50 --random-init \\
        --row dino=resnet50,work_dirs/dino_r50_backbone.pth \\
        --data herlev=../shared/data/herlev \\
        --data bethesda=../shared/data/cric_crops_bethesda \\
        --transfer herlev:bethesda --transfer bethesda:herlev \\
        --out work_dirs/knn_r50.json

The paper's Table 3 with four DINO models (one per pre-training split)::

    python tools/ssl/knn_eval.py \\
        --runs dino=resnet50,f0.pth,f1.pth,f2.pth,f3.pth \\
        --data herlev=../shared/data/herlev --data cric=CRIC_CROPS \\
        --transfer-whole herlev:cric
"""
import argparse
import json
import os.path as osp
import sys
from pathlib import Path

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.evaluation.knn import (  # noqa: E402
    PRESETS,
    knn_eval_report,
    markdown_table,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Weighted k-NN evaluation of frozen backbone features '
                    '(DINO protocol) on folder-per-class crop sets.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--backbone', help=f'preset ({", ".join(PRESETS)}) or '
                   'config file (its model.backbone)')
    p.add_argument('--checkpoint', action='append',
                   help='weights for --backbone (repeatable: one row each)')
    p.add_argument('--checkpoint-prefix', default=None,
                   help='key prefix of the backbone in the checkpoints '
                        '(default: found automatically)')
    p.add_argument('--backbone-key', default='model.backbone',
                   help='dotted key of the backbone in a config')
    p.add_argument('--random-init', action='store_true',
                   help='add a randomly initialised --backbone row')
    p.add_argument('--row', action='append',
                   help='extra feature source NAME=BACKBONE[,CKPT]')
    p.add_argument('--runs', action='append',
                   help='NAME=BACKBONE,CKPT1,CKPT2,...: one model per run '
                        '(run s = split s, the paper\'s 4 runs)')
    p.add_argument('--data', action='append', required=True,
                   help='NAME=FOLDER of a folder-per-class crop set')
    p.add_argument('--negative', action='append',
                   help='NAME=cls1,cls2: negative classes of a set not in '
                        'the built-in tables (the rest are positive)')
    p.add_argument('--transfer', action='append',
                   help='A:B, fit on the train part of set A, test on the '
                        'test part of set B (binary labels; ours)')
    p.add_argument('--transfer-whole', action='append',
                   help="A[+B...]:C, the paper's Table 3: fit on all of A "
                        '(and B), sensitivity on all positives of C')
    p.add_argument('--whole-k', choices=('source', 'target'),
                   default='source',
                   help='k shown for --transfer-whole: best weighted F1 of '
                        "the source's own binary k-NN, or best target "
                        'sensitivity (all k are in the JSON)')
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--topk', type=int, nargs='+', default=[10, 20, 100, 200],
                   help="k values (DINO's eval_knn); the best is reported")
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--num-splits', type=int, default=4,
                   help='random 75/25 splits (the paper: 4 runs); a --runs '
                        'row uses one split per model instead')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', type=Path, default=None, help='results JSON')
    p.add_argument('--force-overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.out is not None and args.out.exists() and \
                not args.force_overwrite:
            raise FileExistsError(f'{args.out} exists: pass --force-overwrite '
                                  'or choose another --out')
        report = knn_eval_report(
            args.data, backbone=args.backbone, checkpoints=args.checkpoint,
            random_init=args.random_init, rows=args.row, runs=args.runs,
            checkpoint_prefix=args.checkpoint_prefix,
            backbone_key=args.backbone_key, negative=args.negative,
            transfer=args.transfer, transfer_whole=args.transfer_whole,
            img_size=args.img_size, batch_size=args.batch_size,
            topk=args.topk, temperature=args.temperature,
            num_splits=args.num_splits, seed=args.seed,
            progress=not args.no_progress)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError,
            OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 2
    print(markdown_table(report['results'], args.whole_k))
    for name, t in report['timing'].items():
        print(f"{name}: features of all sets in {t['seconds']} s "
              f"({t['images_per_second']} img/s, dim {t['feature_dim']})")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
