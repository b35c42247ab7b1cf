"""Validate a COCO detection file against its image folder (command line of
:func:`cervdet.datasets.coco_checks.check_coco`, the checker that
``CervicalCocoDataset`` also runs when it loads a file).

Checks: empty file (no images), missing keys, missing image files,
unreadable or corrupt images (header always; full decode with
``--check-images``), width/height different from the file, duplicate ids,
annotations pointing to unknown images or categories, boxes that are not 4
finite numbers or degenerate (w or h <= 0), boxes outside the image (beyond
``--tolerance`` pixels) and, with ``--classes NAME ...``, category names not
among those classes. Prints counts per problem, the first examples (image file
names, annotation ids) and how to fix each, then summary statistics. Exit code
1 on errors, 0 when clean.

Example::

    python tools/dataset_converters/check_coco.py \\
        ../shared/data/ccagt_sample/CCAgT_COCO_OD.json \\
        ../shared/data/ccagt_sample/images --file-suffix .jpg --check-images
"""
import argparse
import json
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.coco_checks import check_coco, format_report  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Validate a COCO detection file against its images',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('ann_file', type=Path, help='COCO JSON')
    p.add_argument('img_dir', type=Path, nargs='?',
                   help='folder file_name is relative to (omit: JSON checks only)')
    p.add_argument('--img-dir', type=Path, dest='img_dir_opt', metavar='IMG_DIR',
                   help='same as the positional IMG_DIR')
    p.add_argument('--file-suffix', default='',
                   help="append to file_name when missing (e.g. '.jpg' for CCAgT)")
    p.add_argument('--check-images', action='store_true',
                   help='decode every image (finds truncated/corrupt files)')
    p.add_argument('--tolerance', type=float, default=1.0,
                   help='pixels a box may leave the image')
    p.add_argument('--max-examples', type=int, default=5,
                   help='examples printed per problem')
    p.add_argument('--json-report', type=Path, help='also write the report here')
    p.add_argument('--classes', nargs='+', metavar='NAME',
                   help='class names of the model: report categories named '
                        'otherwise (put after IMG_DIR, or use --img-dir)')
    args = p.parse_args(argv)
    if args.img_dir is not None and args.img_dir_opt is not None and \
            args.img_dir != args.img_dir_opt:
        p.error('give the image folder once (positional IMG_DIR or --img-dir)')
    args.img_dir = args.img_dir or args.img_dir_opt
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; returns 1 on errors, 0 when clean."""
    args = parse_args(argv)
    if not args.ann_file.is_file():
        print(f'error: {args.ann_file} not found', file=sys.stderr)
        return 1
    if args.img_dir is not None and not args.img_dir.is_dir():
        print(f'error: image folder {args.img_dir} not found', file=sys.stderr)
        return 1
    report = check_coco(args.ann_file, args.img_dir, args.file_suffix,
                        args.check_images, args.tolerance, args.max_examples,
                        progress=True, classes=args.classes)
    print(format_report(report, str(args.ann_file)))
    if args.img_dir is None:
        print('  note: no image folder given, image files were not checked')
    if args.json_report:
        args.json_report.write_text(json.dumps(report, indent=1, default=str))
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
