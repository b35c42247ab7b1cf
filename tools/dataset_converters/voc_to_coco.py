"""Convert Pascal VOC XML annotations to one COCO detection file.

Boxes follow MMDetection's ``pascal_voc.py`` converter: COCO
``[xmin, ymin, xmax - xmin, ymax - ymin]`` from the VOC corners.
The class list comes from ``--classes`` (category ids 1..C in that order;
an object of another class is an error) or, without it, from the names met
in the XMLs (sorted).

Command line of :func:`cervdet.datasets.converters.voc.convert_voc`.

Example::

    python tools/dataset_converters/voc_to_coco.py ../shared/data/papsmear_voc \\
        --classes Normal LSIL HSIL --out data/papsmear_voc.json
"""
import argparse
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.converters.voc import VOCFormatError, convert_voc  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Pascal VOC XML -> COCO detection JSON',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', type=Path,
                   help='VOC XML files and/or folders (searched recursively)')
    p.add_argument('--out', type=Path, required=True, help='output COCO JSON')
    p.add_argument('--classes', nargs='+',
                   help='class names in category-id order (default: sorted '
                        'names found in the XMLs)')
    p.add_argument('--img-dir', type=Path,
                   help='image folder file_name is relative to (default: '
                        'the folder of each XML)')
    p.add_argument('--difficult', choices=('crowd', 'keep', 'skip'), default='crowd',
                   help='how to write objects marked <difficult>1')
    p.add_argument('--overwrite', action='store_true', help='replace --out')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    try:
        coco = convert_voc(args.inputs, args.out, args.classes, args.img_dir,
                           args.difficult, args.overwrite)
    except (VOCFormatError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    counts = {c['name']: 0 for c in coco['categories']}
    id_to_name = {c['id']: c['name'] for c in coco['categories']}
    for a in coco['annotations']:
        counts[id_to_name[a['category_id']]] += 1
    print(f"wrote {args.out}: {len(coco['images'])} images, "
          f"{len(coco['annotations'])} boxes {counts}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
