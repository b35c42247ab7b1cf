"""Cut unlabeled tiles on a regular grid from large images, skipping glass.

Input: image files, folders of fields, or whole-slide images (openslide or
tiffslide). The tiles are chosen by the tissue mask and tile plan of slide
inference (:mod:`cervdet.datasets.slide_tiles`, see
:mod:`cervdet.datasets.ssl_tiles`): a tile is kept when its tissue fraction
is at least ``--min-tissue``; it is written as ``<stem>_x<X>_y<Y>.<format>``
(X, Y: level-0 top-left corner) with a manifest ``tiles.csv`` and
``tiles.json``.

Example (the shared real ThinPrep field)::

    python tools/ssl/extract_tiles.py ../shared/data/tct_field \\
        --out-dir data/ssl-tiles-256 --tile-size 256 --min-tissue 0.3

Resolution: ``--level L`` reads tiles at pyramid level L; ``--mpp M`` picks
the level nearest above M microns per pixel and resizes (needs the slide's
mpp, or ``--source-mpp`` for plain images). An existing output is never
overwritten: ``--resume`` keeps existing tiles and writes the missing ones,
``--force-overwrite`` rewrites them.
"""
import argparse
import os.path as osp
import sys
from pathlib import Path
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.ssl_tiles import extract_tiles  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Regular-grid tiles from large cytology images or '
                    'whole-slide images, skipping blank glass.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+',
                   help='image / slide files or folders of them')
    p.add_argument('--out-dir', type=Path, required=True)
    p.add_argument('--tile-size', type=int, default=256,
                   help='output tile side (px)')
    p.add_argument('--stride', type=int, default=None,
                   help='grid step in output px (default: --tile-size)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--level', type=int, default=None,
                   help='pyramid level to read (default 0)')
    g.add_argument('--mpp', type=float, default=None,
                   help='target microns per pixel of the tiles')
    p.add_argument('--source-mpp', type=float, default=None,
                   help='level-0 microns per pixel of plain images')
    p.add_argument('--min-tissue', type=float, default=0.3,
                   help='smallest tissue fraction of a kept tile')
    p.add_argument('--max-tiles', type=int, default=None,
                   help='at most this many tiles per input (random, --seed)')
    p.add_argument('--format', choices=('jpg', 'png'), default='jpg')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--backend', default='auto',
                   choices=('auto', 'image', 'openslide', 'tiffslide'))
    p.add_argument('--min-darkness', '--glass-delta', dest='min_darkness',
                   type=float, default=25.,
                   help='floor of the threshold on the grey levels below the '
                        'glass (the tissue mask of slide inference)')
    p.add_argument('--min-saturation', '--min-chroma', dest='min_saturation',
                   type=float, default=20.,
                   help='floor of the threshold on the HSV saturation (the '
                        'tissue mask of slide inference)')
    p.add_argument('--resume', action='store_true',
                   help='keep existing tiles, write the missing ones')
    p.add_argument('--force-overwrite', action='store_true',
                   help='rewrite existing tiles and manifest')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        res = extract_tiles(
            args.inputs, args.out_dir, tile_size=args.tile_size,
            stride=args.stride, level=args.level, mpp=args.mpp,
            source_mpp=args.source_mpp, min_tissue=args.min_tissue,
            max_tiles=args.max_tiles, fmt=args.format, seed=args.seed,
            backend=args.backend, resume=args.resume,
            force_overwrite=args.force_overwrite,
            min_saturation=args.min_saturation,
            min_darkness=args.min_darkness, progress=not args.no_progress)
    except (FileExistsError, FileNotFoundError, ValueError, ImportError,
            OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"kept {res['kept']} tiles ({res['existing']} already there), "
          f"skipped {res['skipped_background']} background tiles, "
          f"in {res['seconds']} s -> {args.out_dir}")
    for src, c in res['per_source'].items():
        print(f"  {src}: grid {c['grid']}, background {c['background']}, "
              f"written {c['written']}, existing {c['existing']}, "
              f"not selected {c['not_selected']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
