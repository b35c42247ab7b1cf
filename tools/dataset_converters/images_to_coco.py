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
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')


def list_images(img_dir: Path, recursive: bool = False) -> List[Path]:
    """Image files of a folder, sorted (relative order = COCO id order)."""
    img_dir = Path(img_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f'image folder {img_dir} does not exist')
    pattern = '**/*' if recursive else '*'
    return sorted(p for p in img_dir.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height) from the image header; raises ValueError naming the
    file when it cannot be read."""
    try:
        with Image.open(path) as im:
            im.verify()  # checks the file structure without decoding pixels
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f'{path}: not a readable image ({err}); remove or '
                         're-export it, or pass --skip-bad') from err


def images_to_coco(img_dir: Path, categories: List[dict],
                   recursive: bool = False,
                   skip_bad: bool = False) -> Tuple[dict, List[str]]:
    """COCO dict of the folder's images (``annotations: []``).

    Returns:
        tuple: the COCO dict and the list of skipped (bad) files.
    """
    files = list_images(img_dir, recursive)
    if not files:
        raise ValueError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in '
                         f'{img_dir}' + ('' if recursive else
                                         ' (sub-folders: pass --recursive)'))
    images, bad = [], []
    for path in tqdm(files, desc='reading image sizes', unit='img'):
        try:
            w, h = image_size(path)
        except ValueError as err:
            if not skip_bad:
                raise
            bad.append(str(err))
            continue
        images.append(dict(id=len(images) + 1, width=int(w), height=int(h),
                           file_name=path.relative_to(img_dir).as_posix()))
    return dict(images=images, annotations=[], categories=categories), bad


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
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
        labeled = json.loads(args.categories_from.read_text())
        categories = labeled.get('categories') or []
        if not categories:
            raise ValueError(f'{args.categories_from}: no "categories"; give '
                             'the labeled COCO file of the same classes')
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
