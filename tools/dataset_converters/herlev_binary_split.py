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

Command line of
:func:`cervdet.datasets.converters.herlev.herlev_binary_split`.

Example::

    python tools/dataset_converters/herlev_binary_split.py \\
        --data-root ../shared/data --out-dir data/herlev-binary --seed 0
"""
import argparse
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.converters.herlev import (  # noqa: E402
    HerlevSplitError,
    existing_outputs,
    herlev_binary_split,
    write_lists,
)


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
    existing = existing_outputs(out_dir)
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
