"""Convert ISBI 2014 (Overlapping Cervical Cytology) nucleus masks to COCO boxes.

One box per nucleus of each ``EDF0NN_GT.png`` mask, class ``nucleus``;
masks that hold only outlines are closed and filled first. Command line of
:func:`cervdet.datasets.converters.isbi2014.convert_isbi2014` (how the masks
are read: :mod:`cervdet.datasets.converters.isbi2014`).

Example::

    python tools/dataset_converters/isbi2014_to_coco.py \\
        --img-dir ../shared/data/isbi2014_edf --out data/isbi2014_edf.json
"""
import argparse
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.converters.isbi2014 import (  # noqa: E402
    DEFAULT_IMG_DIR,
    convert_isbi2014,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='ISBI 2014 EDF nucleus masks -> COCO boxes (class nucleus)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--img-dir', type=Path, default=DEFAULT_IMG_DIR,
                   help='folder with EDF0NN.png images and EDF0NN_GT.png masks')
    p.add_argument('--out', type=Path, required=True, help='output COCO JSON')
    p.add_argument('--min-area', type=int, default=20,
                   help='drop components with fewer pixels')
    p.add_argument('--fill', choices=('auto', 'always', 'never'), default='auto',
                   help='auto: close+fill outline masks, fill holes of the others')
    p.add_argument('--gt-suffix', default='_GT', help='mask file stem suffix')
    p.add_argument('--overwrite', action='store_true', help='replace --out')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    try:
        coco = convert_isbi2014(args.img_dir, args.out, args.min_area, args.fill,
                                args.gt_suffix, args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError, IOError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    per_img = np.bincount([a['image_id'] for a in coco['annotations']],
                          minlength=len(coco['images']) + 1)[1:]
    outlines = [i['file_name'] for i in coco['images'] if i['outline_mask']]
    print(f"wrote {args.out}: {len(coco['images'])} images, "
          f"{len(coco['annotations'])} nucleus boxes "
          f"({per_img.min()}-{per_img.max()} per image); outline masks filled: "
          f"{', '.join(outlines) or 'none'}")
    print(f'image file names are relative to {args.img_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
