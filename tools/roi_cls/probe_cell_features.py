"""Linear probe of a cell feature cache: can abnormal cells be told apart?

A diagnostic of the cell encoder behind an ROI classifier (it uses the cell
labels): a balanced logistic regression on the cached pooled features of
the ``--fit-split`` cells, its ROC-AUC of abnormal vs normal on the
``--eval-split`` cells (:mod:`cervdet.evaluation.cell_feature_probe`). The
caches are those of the config's datasets, or of ``--feature-cache``, as
written by ``tools/roi_cls/extract_cell_features.py``.

Example (``CONFIG``: e.g. ``configs/roi_cls/global-local_r18-w32_att-blstm-
vit_adamw-20e_1xb4_cervical-roi-512.py``)::

    python tools/roi_cls/probe_cell_features.py $CONFIG \\
        --feature-cache features/r18-w32-herlev_64/
"""
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.evaluation.cell_feature_probe import (  # noqa: E402
    probe_cell_features,
)

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Logistic-regression probe (abnormal vs normal cells) '
                    'of a cached cell feature set.')
    p.add_argument('config', help='ROI classifier config with ROIBagDataset '
                                  'loaders and a feature_cache')
    p.add_argument('--feature-cache', default=None,
                   help='cache folder to probe instead of the config one')
    p.add_argument('--fit-split', choices=SPLITS, default='train')
    p.add_argument('--eval-split', choices=SPLITS, default='test')
    p.add_argument('--normal-class', default='NILM',
                   help='ROI class of the normal cells')
    p.add_argument('--C', type=float, default=1.0,
                   help='inverse L2 strength of the logistic regression')
    p.add_argument('--out', default=None,
                   help='write the result as JSON (refuses to overwrite '
                        'without --force-overwrite)')
    p.add_argument('--force-overwrite', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    if args.out and osp.exists(args.out) and not args.force_overwrite:
        print(f'error: {args.out} exists; pass --force-overwrite',
              file=sys.stderr)
        return 2
    try:
        res = probe_cell_features(args.config, args.feature_cache,
                                  args.fit_split, args.eval_split,
                                  args.normal_class, args.C)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
