"""Compose labelled regions of interest (ROIs) from real cell crops (CRIC or
Herlev) for the weakly supervised ROI classifier: the command line of
:func:`cervdet.datasets.roi_sets.build_roi_set` (sources, label rule,
composition and output layout are described in
:mod:`cervdet.datasets.roi_sets`).

Output: ``OUT/images/{train,val,test}/roi_<split>_<i>.jpg``,
``OUT/annotations/{train,val,test}.json`` (COCO + ``roi_classes`` /
``roi_label``, read by ``cervdet.datasets.ROIBagDataset``), ``OUT/meta.json``.

Example::

    python tools/dataset_converters/build_roi_set.py --preset cpu \\
        --out-dir data/roi-cric-512
    python tools/dataset_converters/build_roi_set.py --preset cpu \\
        --source herlev --num-train 300 --num-val 60 --num-test 60 \\
        --out-dir data/cervical-roi-herlev-512
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cervdet.datasets.roi_sets import PRESETS, SOURCES, build_roi_set  # noqa: E402
from cervdet.utils.constants import SHARED_DATA_ROOT  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``None`` values mean "preset default")."""
    p = argparse.ArgumentParser(
        description='Compose NILM/LSIL/HSIL ROIs from real CRIC or Herlev '
                    'cell crops (crops real, composition ours; label = worst '
                    'cell).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out-dir', type=Path, required=True, help='output folder')
    p.add_argument('--source', choices=sorted(SOURCES), default='cric',
                   help='cell crops: cric (6 Bethesda folders, 100 px) or '
                        'herlev (7 Herlev folders, 224 px, mapped to '
                        'NILM/LSIL/HSIL as in the module docstring)')
    p.add_argument('--crop-root', type=Path, default=None,
                   help='one folder of crops per class of --source (default: '
                        f'{SHARED_DATA_ROOT}/<cric_crops_bethesda|herlev>)')
    p.add_argument('--field', type=Path, default=None,
                   help='real field image for the background (default: '
                        'tct_field/ beside --crop-root)')
    p.add_argument('--preset', choices=sorted(PRESETS), default='cpu',
                   help='defaults: ' + '; '.join(
                       f'{k}: {v}' for k, v in PRESETS.items()))
    p.add_argument('--roi-size', type=int, help='ROI side (px)')
    p.add_argument('--cells-per-roi', type=int, nargs=2, metavar=('MIN', 'MAX'))
    p.add_argument('--abnormal-fraction', type=float, nargs=2,
                   metavar=('LO', 'HI'),
                   help='range of the share of abnormal cells in an abnormal '
                        'ROI (0.01 0.3)')
    p.add_argument('--low-grade-in-hsil', type=float,
                   help='chance that an extra abnormal cell of an HSIL ROI is '
                        'low grade (0.3)')
    p.add_argument('--num-train', type=int)
    p.add_argument('--num-val', type=int)
    p.add_argument('--num-test', type=int)
    p.add_argument('--split-ratios', type=float, nargs=3,
                   metavar=('TRAIN', 'VAL', 'TEST'))
    p.add_argument('--crop-scale', type=float, nargs=2, metavar=('LO', 'HI'),
                   help='resize range of a crop (default: the preset\'s, for '
                        '100 px crops, x 100/224 for herlev)')
    p.add_argument('--max-overlap', type=float)
    p.add_argument('--min-crop-contrast', type=float)
    p.add_argument('--background', choices=('field', 'paper'))
    p.add_argument('--seed', type=int)
    p.add_argument('--jpeg-quality', type=int)
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace a previous build in a non-empty --out-dir')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    skip = ('out_dir', 'crop_root', 'field', 'preset', 'force_overwrite',
            'no_progress')
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    try:
        res = build_roi_set(args.out_dir, args.crop_root, args.field,
                            args.preset, args.force_overwrite,
                            not args.no_progress, **overrides)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    meta = json.loads(res['meta'].read_text())
    print(f"built {res['out_dir']} in {meta['build_seconds']} s")
    for split, c in meta['counts'].items():
        print(f"  {split:5s}: {c['rois']} ROIs {c['rois_per_class']}, "
              f"{c['cells']} cells {c['cells_per_class']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
