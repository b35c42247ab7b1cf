"""ISBI 2014 (Overlapping Cervical Cytology) nucleus masks -> COCO boxes (the
logic of ``tools/dataset_converters/isbi2014_to_coco.py``).

Each ``EDF0NN_GT.png`` beside ``EDF0NN.png`` is a nucleus mask. Some masks
(EDF000-002 in the shared sample) hold only the nucleus *outlines* (one-pixel,
8-connected rings, one grey level per nucleus); the others are filled. Rings
are detected (almost no pixel survives a 3x3 erosion), closed and filled;
filling an already filled mask changes nothing. One box per connected
component of the filled mask, one class ``nucleus``.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from cervdet.utils.constants import SHARED_DATA_ROOT

#: The ISBI 2014 sample of the shared data folder.
DEFAULT_IMG_DIR = SHARED_DATA_ROOT / 'isbi2014_edf'
CATEGORY = 'nucleus'


def read_mask(path: Path) -> np.ndarray:
    """Read a GT mask (8- or 16-bit, any grey levels) as a boolean mask.

    Args:
        path (Path): Mask image.

    Returns:
        np.ndarray: bool ``[H, W]``, True on nucleus pixels (value > 0).
    """
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise IOError(f'cannot read mask {path}')
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    return mask > 0


def is_outline_mask(mask: np.ndarray, max_interior: float = 0.2) -> bool:
    """Whether a mask holds thin outlines rather than filled regions.

    Args:
        mask (np.ndarray): bool ``[H, W]``.
        max_interior (float): Largest share of pixels surviving a 3x3 erosion
            for the mask to count as outlines (filled nuclei keep ~80 %).

    Returns:
        bool: True for outline masks.
    """
    n = int(mask.sum())
    if n == 0:
        return False
    interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return bool(interior.sum() < max_interior * n)


def fill_mask(mask: np.ndarray, close_gaps: bool = True) -> np.ndarray:
    """Fill closed outlines (holes not connected to the image border).

    An outline cut by the image edge is closed by that edge: such components
    are filled on their own with the touched image side counted as outline.

    Args:
        mask (np.ndarray): bool ``[H, W]``.
        close_gaps (bool): Morphologically close (3x3) first, so outlines
            with one-pixel gaps are filled too (the mask is zero-padded, so
            nothing grows into the image border).

    Returns:
        np.ndarray: bool ``[H, W]``; equal to ``mask`` for filled masks
        without holes.
    """
    m = mask.astype(np.uint8)
    if close_gaps:
        m = cv2.morphologyEx(np.pad(m, 1), cv2.MORPH_CLOSE,
                             np.ones((3, 3), np.uint8))[1:-1, 1:-1]
    filled = ndi.binary_fill_holes(m)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    H, W = m.shape
    for k in range(1, n):
        x, y, w, h = stats[k, :4]
        sides = (x == 0, y == 0, x + w == W, y + h == H)  # left top right bottom
        if not any(sides):
            continue
        comp = np.pad(labels[y:y + h, x:x + w] == k, 1)
        for side, edge in zip(sides, (np.s_[1:-1, 0], np.s_[0, 1:-1],
                                      np.s_[1:-1, -1], np.s_[-1, 1:-1])):
            if side:  # the image edge closes the outline on this side
                comp[edge] = True
        filled[y:y + h, x:x + w] |= ndi.binary_fill_holes(comp)[1:-1, 1:-1]
    return filled


def mask_to_boxes(mask: np.ndarray, min_area: int = 20
                  ) -> Tuple[List[List[int]], List[int]]:
    """COCO boxes of the 8-connected components of a mask.

    Args:
        mask (np.ndarray): bool ``[H, W]``.
        min_area (int): Components with fewer pixels are dropped.

    Returns:
        tuple: ``(boxes, areas)``: ``[x, y, w, h]`` lists (pixel-exact extent,
        so ``x + w`` is one past the last column) and pixel counts.
    """
    n, _, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8)
    stats = stats[1:]
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    boxes = stats[keep][:, :4].astype(int).tolist()
    areas = stats[keep][:, cv2.CC_STAT_AREA].astype(int).tolist()
    return boxes, areas


def find_pairs(img_dir: Path, gt_suffix: str = '_GT') -> List[Tuple[Path, Path]]:
    """Pair every ``<name><gt_suffix>.<ext>`` mask with its ``<name>.<ext>`` image.

    Args:
        img_dir (Path): Folder with images and masks.
        gt_suffix (str): Suffix of the mask file stem.

    Returns:
        list[tuple[Path, Path]]: Sorted ``(image, mask)`` pairs.
    """
    pairs = []
    for gt in sorted(img_dir.glob(f'*{gt_suffix}.*')):
        stem = gt.stem[:-len(gt_suffix)]
        cands = [p for p in sorted(img_dir.glob(f'{stem}.*')) if p != gt]
        if not cands:
            raise FileNotFoundError(
                f'mask {gt.name} has no image {stem}.* in {img_dir}')
        pairs.append((cands[0], gt))
    if not pairs:
        raise FileNotFoundError(f'no *{gt_suffix}.* masks in {img_dir}')
    return pairs


def convert_isbi2014(img_dir=DEFAULT_IMG_DIR, out_file=None, min_area: int = 20,
                     fill: str = 'auto', gt_suffix: str = '_GT',
                     overwrite: bool = False, progress: bool = True) -> Dict:
    """Convert the masks of an ISBI 2014 folder to one COCO detection dict.

    Args:
        img_dir (str | Path): Folder with ``EDF*.png`` and ``EDF*_GT.png``.
        out_file (str | Path | None): JSON to write (``None``: do not write).
        min_area (int): Smallest nucleus area in pixels.
        fill (str): ``'auto'`` (close and fill outline masks, fill holes of
            the others), ``'always'`` (close and fill every mask) or
            ``'never'``.
        gt_suffix (str): Suffix of the mask file stem.
        overwrite (bool): Replace an existing ``out_file``.
        progress (bool): Show a progress bar.

    Returns:
        dict: COCO dict; ``file_name`` is relative to ``img_dir``. Each image
        also carries ``outline_mask`` (bool) telling how its mask was read.
    """
    img_dir = Path(img_dir)
    if fill not in ('auto', 'always', 'never'):
        raise ValueError(f"fill must be auto, always or never, got {fill!r}")
    if out_file is not None and Path(out_file).exists() and not overwrite:
        raise FileExistsError(f'{out_file} exists; pass --overwrite to replace it')
    coco = dict(images=[], annotations=[],
                categories=[dict(id=1, name=CATEGORY, supercategory='cell')])
    for img_id, (img_path, gt_path) in enumerate(
            tqdm(find_pairs(img_dir, gt_suffix), desc='isbi2014', unit='img',
                 disable=not progress), start=1):
        mask = read_mask(gt_path)
        outline = is_outline_mask(mask)
        if fill == 'always' or (fill == 'auto' and outline):
            mask = fill_mask(mask, close_gaps=True)
        elif fill == 'auto':
            mask = fill_mask(mask, close_gaps=False)
        boxes, areas = mask_to_boxes(mask, min_area)
        h, w = mask.shape
        coco['images'].append(dict(id=img_id, file_name=img_path.name, width=w,
                                   height=h, outline_mask=outline))
        for box, area in zip(boxes, areas):
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=img_id, category_id=1,
                bbox=box, area=area, iscrowd=0))
    if out_file is not None:
        Path(out_file).parent.mkdir(parents=True, exist_ok=True)
        Path(out_file).write_text(json.dumps(coco))
    return coco


__all__ = [
    'DEFAULT_IMG_DIR', 'CATEGORY', 'read_mask', 'is_outline_mask', 'fill_mask',
    'mask_to_boxes', 'find_pairs', 'convert_isbi2014'
]
