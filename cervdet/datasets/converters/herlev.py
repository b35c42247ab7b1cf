"""A seeded, stratified train / val split of Herlev as binary (normal vs
abnormal) mmpretrain annotation lists (the logic of
``tools/dataset_converters/herlev_binary_split.py``).

Herlev (Jantzen et al., 2005) has 7 class folders: the three ``normal_*``
folders are *normal* (label 0), the four dysplasia / carcinoma folders are
*abnormal* (label 1). Images are never copied: each list line is
``<path relative to data_root> <label>``, read by an mmpretrain
``CustomDataset`` with ``data_prefix=<data_root>``.

The split is stratified per source folder (each permuted once with the
seed; ``round(val_ratio * n)`` of it goes to val, at least 1 when
``n >= 2``), disjoint and complete, and reproducible (files sorted by name
before the permutation).
"""
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from cervdet.datasets.classes import HERLEV_ABNORMAL, HERLEV_NORMAL
from cervdet.utils.constants import IMG_EXTS

#: What :func:`write_lists` writes into its folder.
OUTPUT_FILES = ('train.txt', 'val.txt', 'classes.txt', 'meta.json')


class HerlevSplitError(ValueError):
    """Input that cannot be split (the message names the folder and fix)."""


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside ``folder``, sorted by name.

    Args:
        folder (Path): One class folder.

    Returns:
        list[Path]: The image files (extensions of ``IMG_EXTS``).

    Raises:
        HerlevSplitError: If the folder is missing or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HerlevSplitError(
            f'{folder}: folder not found; --data-root must be the folder '
            'holding herlev/<class>/ (the shared data folder, e.g. '
            '../shared/data)')
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMG_EXTS)
    if not files:
        raise HerlevSplitError(f'{folder}: no image file ({", ".join(IMG_EXTS)})')
    return files


def split_folder(n: int, val_ratio: float,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of one stratum of ``n`` items.

    ``round(val_ratio * n)`` (half up) items go to val, at least 1 when
    ``n >= 2`` and ``val_ratio > 0``, never all of them when ``n >= 2``.
    Both index arrays are sorted (the lists keep the name order).

    Args:
        n (int): Number of items of the stratum.
        val_ratio (float): Fraction in val, in ``[0, 1)``.
        rng (np.random.Generator): Generator of the permutation.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(train, val)`` int indices.
    """
    if not 0. <= val_ratio < 1.:
        raise HerlevSplitError(f'--val-ratio must be in [0, 1), got {val_ratio}')
    n_val = int(np.floor(val_ratio * n + 0.5))
    if n >= 2 and val_ratio > 0:
        n_val = min(max(n_val, 1), n - 1)
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def herlev_binary_split(
        data_root: Path, herlev_dir: str = 'herlev', val_ratio: float = 0.2,
        seed: int = 0, extra_abnormal: Sequence[str] = ()
) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]], Dict[str, dict]]:
    """Stratified binary split of the Herlev folders (+ extra abnormal ones).

    Args:
        data_root (Path): Folder the list paths are relative to.
        herlev_dir (str): Herlev folder inside ``data_root``.
        val_ratio (float): Fraction of each folder in val.
        seed (int): Seed of the permutations.
        extra_abnormal (Sequence[str]): More abnormal-only folders inside
            ``data_root``.

    Returns:
        tuple: ``(train, val, counts)``: lists of ``(relative path, label)``
        and ``{folder: {label, train, val}}``.
    """
    data_root = Path(data_root)
    rng = np.random.default_rng(seed)
    strata = [(f'{herlev_dir}/{c}', 0) for c in HERLEV_NORMAL]
    strata += [(f'{herlev_dir}/{c}', 1) for c in HERLEV_ABNORMAL]
    strata += [(str(Path(e).as_posix()).strip('/'), 1) for e in extra_abnormal]
    folders = [f for f, _ in strata]
    if len(set(folders)) != len(folders):
        raise HerlevSplitError(f'a folder is listed twice: {folders}')
    train: List[Tuple[str, int]] = []
    val: List[Tuple[str, int]] = []
    counts: Dict[str, dict] = {}
    for folder, label in strata:
        files = list_images(data_root / folder)
        tr, va = split_folder(len(files), val_ratio, rng)
        rel = [f.relative_to(data_root).as_posix() for f in files]
        for name in rel:
            if any(ch.isspace() for ch in name):
                raise HerlevSplitError(
                    f'{data_root / name}: a file name with white space '
                    'cannot be written to an mmpretrain list file; rename it')
        train += [(rel[i], label) for i in tr]
        val += [(rel[i], label) for i in va]
        counts[folder] = dict(label=label, train=len(tr), val=len(va))
    return train, val, counts


def existing_outputs(out_dir: Path) -> List[Path]:
    """The files of :data:`OUTPUT_FILES` that already exist in ``out_dir``."""
    return [Path(out_dir) / n for n in OUTPUT_FILES
            if (Path(out_dir) / n).exists()]


def write_lists(out_dir: Path, train: List[Tuple[str, int]],
                val: List[Tuple[str, int]], meta: dict,
                force_overwrite: bool = False) -> List[Path]:
    """Write ``train.txt``, ``val.txt``, ``classes.txt`` and ``meta.json``.

    Args:
        out_dir (Path): Output folder (created).
        train (list[tuple[str, int]]): ``(relative path, label)`` of train.
        val (list[tuple[str, int]]): Same for val.
        meta (dict): Settings and counts written to ``meta.json``.
        force_overwrite (bool): Replace existing outputs.

    Returns:
        list[Path]: The four files written.

    Raises:
        FileExistsError: If an output exists and not ``force_overwrite``.
    """
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in OUTPUT_FILES]
    existing = existing_outputs(out_dir)
    if existing and not force_overwrite:
        raise FileExistsError(
            f'{", ".join(map(str, existing))} already exist(s); pass '
            '--force-overwrite to replace them or choose another --out-dir')
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, items in zip(paths[:2], (train, val)):
        path.write_text(''.join(f'{p} {label}\n' for p, label in items))
    paths[2].write_text('normal\nabnormal\n')
    paths[3].write_text(json.dumps(meta, indent=1))
    return paths


__all__ = [
    'HERLEV_NORMAL', 'HERLEV_ABNORMAL', 'OUTPUT_FILES', 'HerlevSplitError',
    'list_images', 'split_folder', 'herlev_binary_split', 'write_lists',
    'existing_outputs'
]
