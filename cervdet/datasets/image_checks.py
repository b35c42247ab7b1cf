"""Header-only checks of a detection data set's image files.

An image whose real size differs from the ``width``/``height`` of its
annotation trains with boxes outside the image (``loss_bbox = inf``) and
scores AP 0 at test time; a file that is not an image fails only when a
loader first reaches it (for a val image: after a whole training epoch).
These checks read the file header only (PIL's lazy ``Image.open``), about a
millisecond per image.
"""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

#: EXIF orientations that swap width and height (OpenCV, which decodes
#: the images for training, applies the EXIF orientation).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


class ImageHeaderError(ValueError):
    """Image files that do not match their annotation."""


def image_header_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as decoders return it (EXIF rotation
    applied), from its header only.

    Raises:
        OSError: The file is missing or is not an image PIL can identify.
    """
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None  # header only: no decompression bomb
    with Image.open(path) as im:
        w, h = im.size
        orientation = None
        if im.format in ('JPEG', 'TIFF', 'PNG', 'WEBP'):
            try:
                orientation = im.getexif().get(0x0112)
            except Exception:  # noqa: BLE001 - a bad EXIF block: ignore it
                orientation = None
    if orientation in _SWAPPING_ORIENTATIONS:
        w, h = h, w
    return int(w), int(h)


def image_problem(path: str, width: Optional[int] = None,
                  height: Optional[int] = None) -> Optional[str]:
    """Why the image at ``path`` cannot be used with an annotation of size
    ``width x height`` (None: it can).

    Returns:
        str | None: e.g. ``'images/a.jpg is 512x384 px but the annotation
        says 256x256'``.
    """
    if not osp.isfile(path):
        return f'{path} does not exist'
    try:
        w, h = image_header_size(path)
    except Exception as e:  # noqa: BLE001 - any decoder error is reported
        return (f'{path} is not a readable image ({type(e).__name__}: '
                f'{str(e)[:120]})')
    if width and height and (int(width), int(height)) != (w, h):
        return (f'{path} is {w}x{h} px (width x height) but the annotation '
                f'says {int(width)}x{int(height)}')
    return None


def _leaf_datasets(dataset) -> Iterator:
    """The datasets inside wrappers (ConcatDataset, RepeatDataset, ...)."""
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        for d in inner:
            yield from _leaf_datasets(d)
        return
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from _leaf_datasets(inner)
        return
    yield dataset


def check_dataset_images(dataset, max_examples: int = 5,
                         split: str = '') -> int:
    """Check every image of a (possibly wrapped) mmengine detection dataset,
    header only: it exists, PIL identifies it, and its size is the
    ``width`` x ``height`` of its data info.

    Only data infos with ``img_path``, ``width`` and ``height`` (COCO-style
    detection sets) are checked; datasets that opt out of image checks
    (``check_image_files=False`` / ``check_images=False``, e.g. feature
    caches without images) or read through a storage backend are skipped.

    Args:
        dataset: An mmengine ``BaseDataset`` (or a wrapper of some).
        max_examples (int): Problems listed in the error.
        split (str): Name used in the message (``'val'``...).

    Returns:
        int: Number of images checked.

    Raises:
        ImageHeaderError: Naming each bad file, both sizes and the fix.
    """
    problems: List[str] = []
    n = 0
    ann_files = []
    for ds in _leaf_datasets(dataset):
        if not hasattr(ds, 'get_data_info') or not hasattr(ds, '__len__'):
            continue
        if getattr(ds, 'check_image_files', True) is False or \
                getattr(ds, 'check_images', True) is False or \
                getattr(ds, 'backend_args', None):
            continue
        if getattr(ds, '_fully_initialized', True) is False:
            ds.full_init()
        ann_files.append(str(getattr(ds, 'ann_file', '') or ''))
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            path = info.get('img_path')
            if not path or not info.get('width') or not info.get('height'):
                continue
            n += 1
            problem = image_problem(path, info.get('width'),
                                    info.get('height'))
            if problem:
                problems.append(problem)
    if problems:
        listed = '\n'.join(f'  - {p}' for p in problems[:max_examples])
        more = f'\n  ... and {len(problems) - max_examples} more' \
            if len(problems) > max_examples else ''
        raise ImageHeaderError(
            f'{len(problems)} of the {n} {split + " " if split else ""}'
            f'images do not match their annotation '
            f'({", ".join(a for a in ann_files if a) or "data infos"}):\n'
            f'{listed}{more}\nFix: re-export the images or the annotation '
            'file so that they agree (width/height of each "images" entry); '
            'tools/dataset_converters/check_coco.py --check-images lists '
            'every such file.')
    return n


__all__ = ['ImageHeaderError', 'image_header_size', 'image_problem',
           'check_dataset_images']
