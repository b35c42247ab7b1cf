"""Precompute the CNN features of every cell of an ROI set (feature cache).

Each ROI gets one ``.npz`` (``pooled`` ``[N, C]``, ``maps`` ``[N, C, h, w]``
unless ``--no-maps``, ``boxes``, ``fingerprint``) in the ``feature_cache``
of the split's dataset config (or ``--out-dir``), and the encoder weights
are written beside the caches as ``cell_encoder.pth``
(:mod:`cervdet.datasets.cell_feature_cache` describes the format). Runs are
resumable: ROIs whose cache exists and matches are skipped; stale caches are
only replaced with ``--force-overwrite``.

Example::

    python tools/roi_cls/extract_cell_features.py \\
        configs/roi_cls/<config>.py --split all --checkpoint r50.pth \\
        --checkpoint-prefix backbone.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.datasets.cell_feature_cache import (  # noqa: E402
    SPLITS,
    extract_cell_features,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Cache the cell features (pooled + stage-4 maps) of an '
                    'ROI set for the ROI classifier.')
    p.add_argument('config', help='ROI classifier config (has cell_encoder, '
                                  'cell_size and ROIBagDataset loaders)')
    p.add_argument('--split', choices=SPLITS + ('all', ), default='all',
                   help='dataloader(s) whose ROIs are processed')
    p.add_argument('--checkpoint', default=None,
                   help='local checkpoint of the cell encoder')
    p.add_argument('--checkpoint-prefix', default='',
                   help='key prefix of the encoder in the checkpoint, e.g. '
                        '"backbone." for a classifier checkpoint')
    p.add_argument('--out-dir', default=None,
                   help='cache folder (default: feature_cache of the '
                        "split's dataset config)")
    p.add_argument('--batch-size', type=int, default=64,
                   help='cells per forward pass')
    p.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    p.add_argument('--dtype', choices=('float16', 'float32'),
                   default='float16', help='dtype of the stored arrays')
    p.add_argument('--no-maps', action='store_true',
                   help='store only the pooled features (configs without '
                        'the local branch)')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace existing caches that are stale (other boxes '
                        'or encoder); matching caches are always kept')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the encoder initialisation (a randomly '
                        'initialised encoder is reproducible)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    try:
        res = extract_cell_features(
            args.config, args.split, args.checkpoint, args.checkpoint_prefix,
            args.out_dir, args.batch_size, args.device, args.dtype,
            args.no_maps, args.force_overwrite, args.seed,
            progress=not args.no_progress)
    except (ValueError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"{res['num_rois']} ROIs, {res['num_cached']} cached and up to "
          f"date, {res['num_extracted']} to extract")
    if res['num_extracted']:
        dt = res['seconds']
        print(f"extracted {res['num_cells']} cells of {res['num_extracted']} "
              f"ROIs in {dt:.1f} s: {res['num_cells'] / dt:.1f} cells/s "
              f"({args.device}, batch {args.batch_size}, "
              f"{res['cell_size']} px)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
