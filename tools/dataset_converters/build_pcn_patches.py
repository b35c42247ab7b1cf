"""Build the Patch Correction Network's (PCN) patch set from a COCO detection
set: the command line of :mod:`cervdet.datasets.pcn_patches` (positives
around abnormal boxes, negatives on normal cells, other cells and
background, cut with the detector's own patch code; sampling and output
layout are described there).

Example (the mosaic set of ``build_mosaic.py``)::

    python tools/dataset_converters/build_pcn_patches.py \\
        --coco-root data/cervical-mosaic-bethesda-1024 \\
        --out-dir data/cervical-pcn-patches-1024

The real CRIC fields (images in one folder, splits per field; no test field
may reach the PCN)::

    python tools/dataset_converters/build_pcn_patches.py \\
        --coco-root data/cric-cervix --splits train val \\
        --img-dir data/cric-cervix/images \\
        --forbid-fields data/cric-cervix/annotations/test.json \\
        --out-dir data/cric-pcn-patches
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cervdet.datasets.pcn_patches import build_pcn_patches  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Cut PCN training patches (abnormal vs normal) out of a '
                    'COCO detection set.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--coco-root', type=Path,
                   help='set in the build_mosaic.py layout: '
                        'annotations/<split>.json + images/<split>/')
    p.add_argument('--splits', nargs='+', default=['train', 'val', 'test'],
                   help='splits of --coco-root to convert')
    p.add_argument('--img-dir', type=Path,
                   help='one image folder for all --coco-root splits '
                        '(default: COCO_ROOT/images/<split>/)')
    p.add_argument('--forbid-fields', nargs='+', type=Path, default=[],
                   help="COCO files (the detector's test split) whose fields "
                        'must not be used; an overlap is an error')
    p.add_argument('--split', nargs=3, action='append', default=[],
                   metavar=('NAME', 'ANN_FILE', 'IMG_DIR'),
                   help='an explicit split (repeatable), instead of --coco-root')
    p.add_argument('--out-dir', type=Path, required=True)
    p.add_argument('--label-mode', choices=('binary', 'multiclass'),
                   default='binary')
    p.add_argument('--normal-classes', nargs='+', default=['NILM', 'normal'],
                   help='category names of normal cells (negatives)')
    p.add_argument('--patch-size', type=int, default=224)
    p.add_argument('--patch-scale', type=float, default=1.5,
                   help='context factor; = model.patch_cfg.scale of stage 3')
    p.add_argument('--square', action=argparse.BooleanOptionalAction,
                   default=True,
                   help='square regions; = model.patch_cfg.square of stage 3')
    p.add_argument('--min-size', type=float, default=0.,
                   help='smallest region side; = model.patch_cfg.min_size')
    p.add_argument('--pos-per-box', type=int, default=2)
    p.add_argument('--neg-per-pos', type=float, default=1.0)
    p.add_argument('--min-neg-per-image', type=int, default=2)
    p.add_argument('--jitter-shift', type=float, default=0.1)
    p.add_argument('--jitter-scale', type=float, default=0.1)
    p.add_argument('--cell-fraction', type=float, default=0.7)
    p.add_argument('--neg-max-iou', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    splits: Dict[str, Tuple[Path, Path]] = {}
    if args.coco_root is not None:
        for s in args.splits:
            splits[s] = (args.coco_root / 'annotations' / f'{s}.json',
                         args.img_dir or args.coco_root / 'images' / s)
    for name, ann, img in args.split:
        splits[name] = (Path(ann), Path(img))
    try:
        res = build_pcn_patches(
            args.out_dir, splits, label_mode=args.label_mode,
            normal_classes=args.normal_classes, patch_size=args.patch_size,
            patch_scale=args.patch_scale, square=args.square,
            min_size=args.min_size, pos_per_box=args.pos_per_box,
            neg_per_pos=args.neg_per_pos,
            min_neg_per_image=args.min_neg_per_image,
            jitter_shift=args.jitter_shift, jitter_scale=args.jitter_scale,
            cell_fraction=args.cell_fraction, neg_max_iou=args.neg_max_iou,
            forbid_fields=args.forbid_fields, seed=args.seed,
            overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"built {res['out_dir']} (classes {res['classes']})")
    for split, c in res['counts'].items():
        print(f'  {split:5s}: {c}  sources {res["sources"][split]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
