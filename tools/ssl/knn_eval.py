"""k-NN probing of frozen backbone features on labeled cell-crop sets.

The protocol of Stegmüller et al. (ISBI 2023) with DINO's weighted k-NN:
within-set (``multi-class`` and ``binary``), split-matched transfer
(``--transfer A:B``, ours) and the paper's whole-set transfer
(``--transfer-whole A[+B]:C``, Table 3), for every feature source
(``--backbone`` with ``--checkpoint`` / ``--random-init``, ``--row``,
``--runs``) on every ``--data`` set. The protocols, the binary class tables
and the k rule are described in :mod:`cervdet.evaluation.knn`, which holds
the logic. Example::

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
