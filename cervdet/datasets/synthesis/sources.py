"""Source crops of a mosaic build: where they are, their per-class split into
train/val/test, and a reader that keeps them in memory."""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from cervdet.datasets.classes import (
    BETHESDA_CLASSES,
    CRIC_FOLDER_TO_CLASS,
    NORMAL_CLASS,
    TCT11_CLASSES,
    TCT11_FOLDER_TO_CLASS,
)
from cervdet.utils.constants import IMG_EXTS

from .matting import crop_contrast

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: Folders and file of the shared data folder the builds read.
CRIC_DIR = 'cric_crops_bethesda'
TCT_DIR = 'tct_crops_11class'
FIELD_FILE = 'tct_field/field_4096x2816.jpg'


def _list_images(folder: Path) -> List[Path]:
    """Sorted image files of ``folder`` (raises if missing or empty)."""
    if not folder.is_dir():
        raise FileNotFoundError(f'crop folder {folder} not found; check --data-root')
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTS)
    if not files:
        raise FileNotFoundError(f'no images in {folder}')
    return files


def list_source_crops(data_root: Path, source: str
                      ) -> Tuple[Dict[str, List[Path]], List[Path]]:
    """Find the abnormal crops per class and the normal crops of a source.

    Args:
        data_root (Path): The shared data folder (holds ``cric_crops_bethesda``
            and ``tct_crops_11class``).
        source (str): ``'bethesda'`` or ``'tct11'``.

    Returns:
        tuple: ``(abnormal, normal)`` with ``abnormal`` a dict class name ->
        sorted crop paths (class order of the source's class list) and
        ``normal`` the sorted CRIC NILM crop paths.
    """
    data_root = Path(data_root)
    if source == 'bethesda':
        folder_to_class = {k: v for k, v in CRIC_FOLDER_TO_CLASS.items()
                           if v != NORMAL_CLASS}
        base, order = data_root / CRIC_DIR, BETHESDA_CLASSES
    elif source == 'tct11':
        folder_to_class, base, order = (TCT11_FOLDER_TO_CLASS,
                                        data_root / TCT_DIR, TCT11_CLASSES)
    else:
        raise ValueError(f'unknown source {source!r}')
    class_to_folder = {v: k for k, v in folder_to_class.items()}
    abnormal = {c: _list_images(base / class_to_folder[c]) for c in order}
    nilm_folder = {v: k for k, v in CRIC_FOLDER_TO_CLASS.items()}[NORMAL_CLASS]
    normal = _list_images(data_root / CRIC_DIR / nilm_folder)
    return abnormal, normal


def split_items(items: Sequence, ratios: Sequence[float],
                rng: np.random.Generator) -> List[List]:
    """Shuffle ``items`` and cut them into ``len(ratios)`` disjoint parts.

    Every part gets at least one item when there are enough items.

    Args:
        items (Sequence): Items to split (e.g. crop paths of one class).
        ratios (Sequence[float]): Relative part sizes (normalised here).
        rng (np.random.Generator): Random generator.

    Returns:
        list[list]: The parts, in the order of ``ratios``.
    """
    n = len(items)
    r = np.asarray(ratios, dtype=np.float64)
    r = r / r.sum()
    counts = np.floor(r * n).astype(int)
    if n >= len(r):
        counts = np.maximum(counts, 1)
    # give the remainder to the largest parts, then fix any excess
    while counts.sum() < n:
        counts[np.argmax(r * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    order = rng.permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [[items[i] for i in order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]


def split_source_crops(abnormal: Dict[str, List[Path]], normal: List[Path],
                       ratios: Sequence[float], seed: int
                       ) -> Dict[str, Dict]:
    """Split every class's crops into train/val/test (deterministic).

    Args:
        abnormal (dict[str, list[Path]]): Abnormal crops per class.
        normal (list[Path]): Normal crops.
        ratios (Sequence[float]): train/val/test shares.
        seed (int): Seed of the split.

    Returns:
        dict: ``{split: {'abnormal': {cls: [Path]}, 'normal': [Path]}}``.
    """
    rng = np.random.default_rng([seed, 7919])
    pools = {s: {'abnormal': {}, 'normal': []} for s in SPLITS}
    for cls, paths in abnormal.items():
        for s, part in zip(SPLITS, split_items(paths, ratios, rng)):
            pools[s]['abnormal'][cls] = part
    for s, part in zip(SPLITS, split_items(normal, ratios, rng)):
        pools[s]['normal'] = part
    return pools


class CropCache:
    """Reads crops once (BGR uint8) and remembers them.

    Args:
        data_root (Path): Root the crop paths are relative to.
    """

    def __init__(self, data_root: Path) -> None:
        self.data_root = Path(data_root)
        self._cache: Dict[Path, np.ndarray] = {}

    def __call__(self, path: Path) -> np.ndarray:
        """Return the crop at ``path``."""
        img = self._cache.get(path)
        if img is None:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise IOError(f'cannot read crop {path}')
            self._cache[path] = img
        return img


def usable_abnormal(pool: Dict[str, List[Path]], crops: CropCache,
                    min_contrast: float = 40.0
                    ) -> Tuple[Dict[str, List[Path]], List[Path]]:
    """Drop abnormal crops with no dark object (nucleus) at their centre.

    Such crops show only glass or cytoplasm (a share of the CRIC crops is
    off-centre); boxing them would teach the detector to fire on glass.

    Args:
        pool (dict[str, list[Path]]): Crops per class.
        crops (CropCache): Crop reader.
        min_contrast (float): Smallest :func:`crop_contrast` kept.

    Returns:
        tuple: ``(kept pool, dropped paths)``.
    """
    kept, dropped = {}, []
    for cls, paths in pool.items():
        keep = [crop_contrast(crops(p)) >= min_contrast for p in paths]
        kept[cls] = [p for p, k in zip(paths, keep) if k]
        dropped += [p for p, k in zip(paths, keep) if not k]
    return kept, dropped


__all__ = [
    'SPLITS', 'CRIC_DIR', 'TCT_DIR', 'FIELD_FILE', 'list_source_crops',
    'split_items', 'split_source_crops', 'CropCache', 'usable_abnormal'
]
