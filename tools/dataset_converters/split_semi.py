"""Split a COCO training file for semi-supervised detection with the
protocol of Chai et al. (ISBI 2022), Sec. 3.2: one constant unlabeled set
(``train_unlabeled.json``) and nested, stratified labeled fractions of the
other images (``train_labeled_<p>.json``); ``--protocol remainder`` for the
old protocol. The command line of :mod:`cervdet.datasets.semi_split` (the
protocol is described there).

Example::

    python tools/dataset_converters/split_semi.py \\
        data/cric-cervix/annotations/train.json \\
        --out-dir data/cric-cervix/annotations/semi --seed 0
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cervdet.datasets.semi_split import (  # noqa: E402
    DEFAULT_PERCENTS,
    DEFAULT_UNLABELED_PERCENT,
    PROTOCOLS,
    CocoSplitError,
    format_summary,
    write_semi_split,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Split a COCO train file for semi-supervised detection: '
                    'one constant unlabeled set and nested, stratified '
                    'labeled fractions of the other images (Chai et al., '
                    'Sec. 3.2)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('ann_file', type=Path, help='COCO train JSON')
    p.add_argument('--out-dir', type=Path, required=True,
                   help='folder of train_labeled_<p>.json and '
                        'train_unlabeled.json (train_unlabeled_<p>.json '
                        'with --protocol remainder)')
    p.add_argument('--percents', type=float, nargs='+',
                   default=list(DEFAULT_PERCENTS),
                   help='labeled percentages in (0, 100] of the images '
                        'outside the unlabeled set')
    p.add_argument('--protocol', choices=PROTOCOLS, default='pool',
                   help="'pool': one unlabeled set for every fraction (the "
                        "paper); 'remainder': the unlabeled set of p is the "
                        'rest of the file')
    p.add_argument('--unlabeled-percent', type=float,
                   default=DEFAULT_UNLABELED_PERCENT,
                   help='protocol pool: percent of the images held out as '
                        'the unlabeled set')
    p.add_argument('--unlabeled-ann', type=Path, default=None,
                   help='protocol pool: a separate COCO file whose images '
                        'are the unlabeled set (then every image of ann_file '
                        'can be labeled); e.g. from images_to_coco.py')
    p.add_argument('--group-by', default=None,
                   help='image-entry key (patient, slide) whose equal '
                        'values stay on one side; default: per image')
    p.add_argument('--seed', type=int, default=0, help='seed of the split')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace existing output files')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; returns 0 on success, 1 on errors."""
    args = parse_args(argv)
    try:
        coco, summary = write_semi_split(
            args.ann_file, args.out_dir, args.percents, args.protocol,
            args.unlabeled_percent, args.unlabeled_ann, args.group_by,
            args.seed, args.force_overwrite)
    except (CocoSplitError, FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    lines = format_summary(args.ann_file, coco, summary, args.seed,
                           args.protocol)
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
