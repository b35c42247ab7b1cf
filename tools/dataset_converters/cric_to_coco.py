"""CRIC Cervix ``classifications.csv`` (nucleus points) -> COCO train/val/test
of real Pap-smear fields (logic: :mod:`cervdet.datasets.cric`).

Example (the shared data, the main job's set)::

    python tools/dataset_converters/cric_to_coco.py \\
        --csv ../shared/data/cric_cervix/classifications.csv \\
        --img-dir ../shared/data/cric_cervix/images \\
        --img-dir ../shared/data/cric_cervix/native \\
        --out-dir data/cric-cervix

writes ``data/cric-cervix/annotations/{train,val,test}.json``,
``images/`` (symbolic links to the source images: nothing is copied),
``splits.csv`` (field -> split) and ``report.txt``. Fields are split per
field (seed 0, 70/15/15 %, every abnormal class in every split); each marked
nucleus becomes a box of ``--box-size`` native CRIC pixels (default 100,
see ``docs/data_preparation.md``) clipped to the image. ``--label-set``:
``abnormal5`` (default; NILM is background), ``bethesda6``, ``binary``.
The full CRIC download (400 native PNGs) works the same way.
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.converters.cric_files import (  # noqa: E402
    existing_annotation_files,
    write_cric_coco,
)
from cervdet.datasets.cric import (  # noqa: E402
    CRIC_NATIVE_SIZE,
    DEFAULT_BOX_SIZE_PX,
    LABEL_SETS,
    CricError,
    build_cric_coco,
)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--csv', required=True, help="CRIC's classifications.csv")
    p.add_argument('--img-dir', action='append', required=True,
                   help='folder of the field images (<stem>.jpg/.png); '
                   'repeat to search several in order')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--label-set', default='abnormal5',
                   choices=sorted(LABEL_SETS))
    p.add_argument('--box-size', type=float, default=DEFAULT_BOX_SIZE_PX,
                   help='box side around each nucleus (default %(default)s '
                   'native px)')
    p.add_argument('--box-unit', choices=('px', 'um'), default='px',
                   help='unit of --box-size: native CRIC pixels or '
                   'micrometres (needs --um-per-px)')
    p.add_argument('--um-per-px', type=float, default=None,
                   help='native pixel size in micrometres (not in the CSV); '
                   'also written into the images for radius matching')
    p.add_argument('--source-size', type=int, nargs=2,
                   default=list(CRIC_NATIVE_SIZE), metavar=('W', 'H'),
                   help='frame of the CSV coordinates (default 1376 1020)')
    p.add_argument('--split', type=float, nargs=3, default=[0.7, 0.15, 0.15],
                   metavar=('TRAIN', 'VAL', 'TEST'))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--link', choices=('symlink', 'copy', 'none'),
                   default='symlink',
                   help='how images reach OUT_DIR/images (none: set the '
                   "config's data_prefix to the source folder yourself)")
    p.add_argument('--on-missing-image', choices=('warn', 'error'),
                   default='warn')
    p.add_argument('--on-unknown-class', choices=('warn', 'error'),
                   default='error')
    p.add_argument('--on-outside-point', choices=('warn', 'error'),
                   default='warn')
    p.add_argument('--overwrite', action='store_true',
                   help='replace existing annotation files in OUT_DIR')
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Command line entry point (0 on success, 2 on bad input)."""
    args = parse_args(argv)
    out = Path(args.out_dir)
    existing = existing_annotation_files(out)
    if existing and not args.overwrite:
        print(f'error: {existing[0]} exists; nothing written. Fix: another '
              '--out-dir, or --overwrite to replace it.', file=sys.stderr)
        return 2
    try:
        cocos, paths, report = build_cric_coco(
            args.csv, args.img_dir, label_set=args.label_set,
            box_size=args.box_size, box_unit=args.box_unit,
            um_per_px=args.um_per_px, source_size=tuple(args.source_size),
            fractions=args.split, seed=args.seed,
            on_missing_image=args.on_missing_image,
            on_unknown_class=args.on_unknown_class,
            on_outside_point=args.on_outside_point)
    except CricError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for line in write_cric_coco(out, cocos, paths, report, args.link):
        print(line)
    print(f'written: {out / "annotations"}/{{train,val,test}}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
