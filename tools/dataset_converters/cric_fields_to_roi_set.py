"""ROIs cut from the real CRIC Cervix fields, labelled by their worst marked
cell (NILM / LSIL / HSIL), for the weakly supervised ROI classifier (Shi et
al., ISBI 2022): the command line of
:func:`cervdet.datasets.roi_sets.build_cric_field_rois` (cell boxes, windows,
splits and output layout are described in
:mod:`cervdet.datasets.roi_sets.cric_fields`).

Output: ``OUT/images/{train,val,test}/``, ``OUT/annotations/{split}.json``
(COCO + ``roi_classes`` / ``roi_label``, read by
``cervdet.datasets.ROIBagDataset``), ``OUT/annotations/cells_{split}.json``
(one class ``cell``, for a class-agnostic cell detector), ``OUT/meta.json``.

Example::

    python tools/dataset_converters/cric_fields_to_roi_set.py \\
        --out-dir data/cric-roi-fields
    python tools/dataset_converters/cric_fields_to_roi_set.py \\
        --roi-size 256 --out-dir data/cric-roi-256
"""
import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cervdet.datasets.roi_sets import build_cric_field_rois  # noqa: E402
from cervdet.utils.constants import SHARED_DATA_ROOT  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='ROIs from the real CRIC fields, labelled by their worst '
        'marked cell (NILM / LSIL / HSIL)')
    p.add_argument('--out-dir', type=Path, required=True)
    p.add_argument('--data-root', type=Path, default=None,
                   help=f'shared data folder (default {SHARED_DATA_ROOT})')
    p.add_argument('--coco-dir', type=Path, default=None,
                   help='read cells and splits from cric_to_coco.py\'s '
                   '{train,val,test}.json instead of the CSV')
    p.add_argument('--img-dir', type=Path, default=None,
                   help='field images (default <data-root>/cric_cervix/'
                   'images)')
    p.add_argument('--roi-size', type=int, default=0,
                   help='window side in image px; 0 = one ROI per field')
    p.add_argument('--stride', type=int, default=0,
                   help='window step (default --roi-size)')
    p.add_argument('--box-size', type=float, default=100.0,
                   help='cell box side in native CRIC px (1376 x 1020)')
    p.add_argument('--min-cells', type=int, default=1)
    p.add_argument('--split-ratios', type=float, nargs=3,
                   default=(0.7, 0.15, 0.15))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--limit', type=int, default=0,
                   help='first N fields only (quick checks)')
    p.add_argument('--force-overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    res = build_cric_field_rois(
        args.out_dir, data_root=args.data_root, coco_dir=args.coco_dir,
        img_dir=args.img_dir, roi_size=args.roi_size, stride=args.stride,
        box_size=args.box_size, min_cells=args.min_cells,
        split_ratios=args.split_ratios, seed=args.seed, limit=args.limit,
        force_overwrite=args.force_overwrite, progress=not args.no_progress)
    for split, c in res['counts'].items():
        print(f'{split}: {c}')
    print(f'written to {res["out_dir"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
