"""A folder of unlabeled images -> a COCO dict with no annotations, the form
mmdet's semi-supervised pipelines read for the unlabeled source (the logic
of ``tools/dataset_converters/images_to_coco.py``).

The categories are copied from a labeled COCO file so that the unlabeled
``CocoDataset`` resolves the same class list. Image sizes are read from the
file headers (PIL, no full decode); unreadable or corrupt images are named
(or skipped). File names are relative to the image folder (the dataset's
``data_prefix.img``).
"""
import json
from pathlib import Path
from typing import List, Tuple

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from cervdet.utils.constants import IMG_EXTS


def list_images(img_dir: Path, recursive: bool = False) -> List[Path]:
    """Image files of a folder, sorted (relative order = COCO id order)."""
    img_dir = Path(img_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f'image folder {img_dir} does not exist')
    pattern = '**/*' if recursive else '*'
    return sorted(p for p in img_dir.glob(pattern)
                  if p.is_file() and p.suffix.lower() in IMG_EXTS)


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

    Args:
        img_dir (Path): Folder of images; ``file_name`` is relative to it.
        categories (list[dict]): COCO ``categories`` written as they are.
        recursive (bool): Also read sub-folders.
        skip_bad (bool): Skip (and list) unreadable images instead of
            raising.

    Returns:
        tuple: the COCO dict and the list of skipped (bad) files.
    """
    files = list_images(img_dir, recursive)
    if not files:
        raise ValueError(f'no images ({", ".join(IMG_EXTS)}) in '
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


def categories_from(coco_file: Path) -> List[dict]:
    """The ``categories`` of a labeled COCO file (to copy into the unlabeled
    one); raises ``ValueError`` when it has none."""
    labeled = json.loads(Path(coco_file).read_text())
    categories = labeled.get('categories') or []
    if not categories:
        raise ValueError(f'{coco_file}: no "categories"; give '
                         'the labeled COCO file of the same classes')
    return categories


__all__ = ['list_images', 'image_size', 'images_to_coco', 'categories_from']
