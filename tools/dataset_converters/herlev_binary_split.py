"""Write a seeded, stratified train / val split of Herlev as binary
(normal vs abnormal) mmpretrain annotation lists.

Herlev (Jantzen et al., 2005) has 7 class folders: the three ``normal_*``
folders are *normal* (label 0), the four dysplasia / carcinoma folders are
*abnormal* (label 1). Images are never copied: each list line is
``<path relative to --data-root> <label>``, read by an mmpretrain
``CustomDataset`` with ``data_prefix=<--data-root>`` (the shared data
folder), e.g. ``herlev/normal_columnar/0001.jpg 0``.

The split is

- stratified per source folder (each of the 7 Herlev classes, and each
  ``--extra-abnormal`` folder, is permuted once with ``--seed`` and
  ``round(val_ratio * n)`` of it goes to val, at least 1 when ``n >= 2``),
  so both splits keep the class mix;
- disjoint and complete: every image is in exactly one list;
- reproducible: same folders + seed -> same lists (files sorted by name
  before the permutation).

Optional ``--extra-abnormal`` folders (e.g. ``tct_crops_11class/hsil``, paths
relative to ``--data-root``) add abnormal-only cells. Writes into
``--out-dir``: ``train.txt``, ``val.txt``, ``classes.txt`` (``normal``,
``abnormal``) and ``meta.json`` (the command's settings and per-folder
counts). Existing outputs are only replaced with ``--force-overwrite``.

Example::

    python tools/dataset_converters/herlev_binary_split.py \\
        --data-root ../shared/data --out-dir data/herlev-binary --seed 0
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from cervdet.utils.constants import IMG_EXTS  # noqa: E402

__all__ = ['HERLEV_NORMAL', 'HERLEV_ABNORMAL', 'IMAGE_EXTS',
           'HerlevSplitError', 'list_images', 'split_folder',
           'herlev_binary_split', 'write_lists', 'parse_args', 'main']

HERLEV_NORMAL = ('normal_superficiel', 'normal_intermediate',
                 'normal_columnar')
HERLEV_ABNORMAL = ('light_dysplastic', 'moderate_dysplastic',
                   'severe_dysplastic', 'carcinoma_in_situ')
IMAGE_EXTS = IMG_EXTS
OUTPUT_FILES = ('train.txt', 'val.txt', 'classes.txt', 'meta.json')


class HerlevSplitError(ValueError):
    """Input that cannot be split (the message names the folder and fix)."""


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside ``folder``, sorted by name.

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
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise HerlevSplitError(f'{folder}: no image file ({", ".join(IMAGE_EXTS)})')
    return files


def split_folder(n: int, val_ratio: float,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of one stratum of ``n`` items.

    ``round(val_ratio * n)`` (half up) items go to val, at least 1 when
    ``n >= 2`` and ``val_ratio > 0``, never all of them when ``n >= 2``.
    Both index arrays are sorted (the lists keep the name order).
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


def write_lists(out_dir: Path, train: List[Tuple[str, int]],
                val: List[Tuple[str, int]], meta: dict,
                force_overwrite: bool = False) -> List[Path]:
    """Write ``train.txt``, ``val.txt``, ``classes.txt`` and ``meta.json``.

    Raises:
        FileExistsError: If an output exists and not ``force_overwrite``.
    """
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in OUTPUT_FILES]
    existing = [p for p in paths if p.exists()]
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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Seeded stratified train/val split of Herlev as normal '
                    'vs abnormal mmpretrain list files (images not copied).')
    p.add_argument('--data-root', default='../shared/data',
                   help='folder holding herlev/ (list paths are relative to '
                        'it; the config data_prefix)')
    p.add_argument('--herlev-dir', default='herlev',
                   help='Herlev folder inside --data-root')
    p.add_argument('--extra-abnormal', nargs='*', default=[],
                   help='more abnormal-only folders inside --data-root, e.g. '
                        'tct_crops_11class/hsil')
    p.add_argument('--out-dir', default='data/herlev-binary')
    p.add_argument('--val-ratio', type=float, default=0.2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace existing list files in --out-dir')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point (0 on success, 2 on bad input)."""
    args = parse_args(argv)
    out_dir = Path(args.out_dir)
    existing = [out_dir / n for n in OUTPUT_FILES if (out_dir / n).exists()]
    if existing and not args.force_overwrite:  # before reading anything
        print(f'error: {existing[0]} already exists; pass --force-overwrite '
              'to replace the lists or choose another --out-dir',
              file=sys.stderr)
        return 2
    try:
        train, val, counts = herlev_binary_split(
            Path(args.data_root), args.herlev_dir, args.val_ratio, args.seed,
            args.extra_abnormal)
    except HerlevSplitError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    meta = dict(tool='tools/dataset_converters/herlev_binary_split.py',
                data_root=args.data_root, herlev_dir=args.herlev_dir,
                extra_abnormal=list(args.extra_abnormal),
                val_ratio=args.val_ratio, seed=args.seed,
                classes=['normal', 'abnormal'], counts=counts,
                num_train=len(train), num_val=len(val))
    write_lists(out_dir, train, val, meta, args.force_overwrite)
    n_abn = [sum(label for _, label in s) for s in (train, val)]
    print(f'wrote {out_dir}: train {len(train)} ({n_abn[0]} abnormal), '
          f'val {len(val)} ({n_abn[1]} abnormal)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
