"""Turn a folder of unlabeled images into a COCO file with no annotations,
the form mmdet's semi-supervised pipelines read for the unlabeled source.

The categories are copied from the labeled COCO file (``--categories-from``)
so that the unlabeled ``CocoDataset`` resolves the same class list. Image
sizes are read from the file headers (PIL, no full decode); unreadable or
corrupt images are reported by path and the tool stops (``--skip-bad`` lists
and skips them instead). File names are relative to ``IMG_DIR`` (the
dataset's ``data_prefix.img``); sub-folders are searched with
``--recursive``.

mmdet's own ``tools/dataset_converters/images2coco.py`` makes the same kind
of file from a class-list text file; this tool differs where a labeled set
already exists: the categories (ids and names) are copied from it rather
than renumbered from 0, corrupt images are named (or skipped) instead of
crashing, and an existing output is never overwritten silently.

Command line of
:func:`cervdet.datasets.converters.unlabeled_images.images_to_coco`.

Example (semi-supervised training on a labeled COCO set plus a folder)::

    python tools/dataset_converters/images_to_coco.py data/unlabeled_tiles \\
        --categories-from data/mine/annotations/train.json \\
        --out data/mine/annotations/unlabeled.json
    # config: unlabeled_dataset = dict(
    #     ann_file='annotations/unlabeled.json',
    #     data_prefix=dict(img='../unlabeled_tiles/'), ...)
"""
import argparse
import json
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.converters.unlabeled_images import (  # noqa: E402
    categories_from,
    images_to_coco,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='A folder of unlabeled images -> COCO file without '
                    'annotations (the unlabeled source of semi-supervised '
                    'training)')
    p.add_argument('img_dir', type=Path, help='folder of images')
    p.add_argument('--categories-from', type=Path, required=True,
                   help='labeled COCO file whose categories are copied')
    p.add_argument('--out', type=Path, required=True, help='output JSON')
    p.add_argument('--recursive', action='store_true',
                   help='also read sub-folders')
    p.add_argument('--skip-bad', action='store_true',
                   help='skip (and list) unreadable images instead of '
                        'stopping')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace an existing --out file')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; 0 on success, 1 on errors."""
    args = parse_args(argv)
    try:
        if args.out.exists() and not args.force_overwrite:
            raise FileExistsError(f'{args.out} exists; pass --force-overwrite '
                                  'to replace it or choose another --out')
        categories = categories_from(args.categories_from)
        coco, bad = images_to_coco(args.img_dir, categories, args.recursive,
                                   args.skip_bad)
    except (OSError, ValueError, json.JSONDecodeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(coco))
    for msg in bad:
        print(f'skipped: {msg}', file=sys.stderr)
    print(f'{args.out}: {len(coco["images"])} unlabeled images from '
          f'{args.img_dir}, {len(categories)} categories, {len(bad)} skipped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
