"""Compose cervical cytology detection images ("mosaics") from real cell crops.

The crops are real (CRIC Cervix, ComparisonDetector); the composition is
ours: abnormal crops are pasted among normal (NILM) crops on a real slide
background, so every box is known exactly. Source crops are split per class
into train/val/test *before* composing, so no crop appears in two splits.

Output layout::

    OUT/images/{train,val,test}/<name>.jpg
    OUT/annotations/{train,val,test}.json   # COCO detection, ids 1..C
    OUT/meta.json                           # arguments + source crops per split

Command line of :func:`cervdet.datasets.synthesis.build_mosaic_dataset`
(backgrounds, cell matting, placement and COCO writing live in
:mod:`cervdet.datasets.synthesis`).

Example::

    python tools/dataset_converters/build_mosaic.py \\
        --source bethesda --preset 512 --out-dir data/mosaic-bethesda-512
"""
import argparse
import json
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.synthesis import PRESETS, build_mosaic_dataset  # noqa: E402
from cervdet.utils.constants import SHARED_DATA_ROOT  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``None`` values mean "preset default")."""
    p = argparse.ArgumentParser(
        description='Compose detection images from real cervical cell crops '
                    '(crops real, composition synthetic).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-root', type=Path, default=SHARED_DATA_ROOT,
                   help='shared data folder with the real crops')
    p.add_argument('--source', choices=('bethesda', 'tct11'), default='bethesda',
                   help='bethesda: CRIC abnormal crops (5 classes); tct11: '
                        'ComparisonDetector crops (11 classes); normals: CRIC NILM')
    p.add_argument('--out-dir', type=Path, required=True, help='output folder')
    p.add_argument('--preset', choices=sorted(PRESETS), default='512',
                   help='defaults: ' + '; '.join(
                       f'{k}: {v}' for k, v in PRESETS.items()))
    p.add_argument('--img-size', type=int, help='image side (px)')
    p.add_argument('--cells-per-image', type=int, nargs=2, metavar=('MIN', 'MAX'))
    p.add_argument('--abnormal-fraction', type=float,
                   help='share of cells of a positive image that are abnormal (0.3)')
    p.add_argument('--negative-fraction', type=float,
                   help='share of images with no abnormal cell, per split (0.2)')
    p.add_argument('--num-train', type=int)
    p.add_argument('--num-val', type=int)
    p.add_argument('--num-test', type=int)
    p.add_argument('--split-ratios', type=float, nargs=3,
                   metavar=('TRAIN', 'VAL', 'TEST'),
                   help='per-class split of the source crops (0.7 0.15 0.15)')
    p.add_argument('--crop-scale', type=float, nargs=2, metavar=('LO', 'HI'),
                   help='random resize factor range of a crop')
    p.add_argument('--min-cell-size', type=int, help='smallest pasted max-side (px)')
    p.add_argument('--max-cell-size', type=int, help='largest pasted max-side (px)')
    p.add_argument('--max-overlap', type=float,
                   help='largest share of a cell another cell may cover (0.1)')
    p.add_argument('--min-crop-contrast', type=float,
                   help='drop abnormal crops with no dark object of this '
                        'contrast at the centre (40)')
    p.add_argument('--background', choices=('field', 'paper'),
                   help='field: quilted real blank glass (default); paper: '
                        'smooth paper-white of the field colour')
    p.add_argument('--class-sampling', choices=('uniform', 'proportional'))
    p.add_argument('--annotate-normal', action='store_true', default=None,
                   help='also box normal cells as class NILM')
    p.add_argument('--seed', type=int)
    p.add_argument('--jpeg-quality', type=int)
    p.add_argument('--overwrite', action='store_true',
                   help='replace a previous build in a non-empty --out-dir')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    overrides = {k: v for k, v in vars(args).items()
                 if k not in ('data_root', 'source', 'out_dir', 'preset', 'overwrite')}
    try:
        res = build_mosaic_dataset(args.out_dir, args.data_root, args.source,
                                   args.preset, overwrite=args.overwrite, **overrides)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    meta = json.loads(res['meta'].read_text())
    print(f"built {res['out_dir']} in {meta['build_seconds']} s")
    for split, c in meta['counts'].items():
        print(f"  {split:5s}: {c['images']} images ({c['negatives']} negative), "
              f"{c['boxes']} boxes {c['boxes_per_class']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
