"""Linear probe of a cell feature cache: can abnormal cells be told apart?

A diagnostic of the cell encoder behind an ROI classifier (not part of the
weakly supervised pipeline: it uses the cell labels): a logistic regression
is fitted on the cached pooled features of the cells of the ``--fit-split``
ROIs (labels: abnormal = a cell whose class maps to an ROI class other than
``--normal-class``; cells without a label are left out) and its ROC-AUC of
abnormal vs normal is measured on the cells of the ``--eval-split`` ROIs
(the project's :func:`cervdet.evaluation.metrics.roc_auc.binary_roc_auc`).
Features are standardised with the fit split's mean / std; classes are
balanced (``class_weight='balanced'``).

The caches are those of the config's datasets (``feature_cache``), or of
``--feature-cache`` (a folder, relative to the dataset's ``data_root`` or
absolute), as written by ``tools/roi_cls/extract_cell_features.py``.

Example::

    python tools/roi_cls/probe_cell_features.py \\
        configs/roi_cls/global-local_r18-w32_att-blstm-vit_adamw-cpu_cervical-roi-512.py \\
        --feature-cache features/r18-w32-herlev_64/
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

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


def load_split(cfg, split: str, feature_cache: Optional[str]
               ) -> Tuple[np.ndarray, np.ndarray, int]:
    """Pooled features and abnormal flags of every labelled cell of a split.

    Returns:
        tuple: ``(features float32 [M, C], abnormal bool [M], num_rois)``.

    Raises:
        FileNotFoundError: A cache file is missing (run the extractor).
        ValueError: A cache's boxes differ from the annotation (stale).
    """
    from mmpretrain.registry import DATASETS

    from cervdet.datasets.transforms import check_cache_boxes
    ds_cfg = cfg[f'{split}_dataloader']['dataset']
    while 'dataset' in ds_cfg and ds_cfg.get('type') != 'ROIBagDataset':
        ds_cfg = ds_cfg['dataset']
    ds_cfg = ds_cfg.copy()
    if feature_cache:
        ds_cfg['feature_cache'] = feature_cache
    ds_cfg['pipeline'] = []
    dataset = DATASETS.build(ds_cfg)
    normal = dataset.metainfo['classes'].index(cfg.get('_probe_normal'))
    feats, flags = [], []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        path = info['cache_path']
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path}: no cache; run tools/roi_cls/extract_cell_features.py '
                'for this config / --feature-cache first')
        with np.load(path) as data:
            if not check_cache_boxes(data['boxes'], info['cell_bboxes']):
                raise ValueError(f'{path}: stale cache (its boxes differ from '
                                 'the annotation); re-extract it')
            pooled = data['pooled'].astype(np.float32)
        labels = np.asarray(info['cell_labels'])
        keep = labels >= 0
        feats.append(pooled[keep])
        flags.append(labels[keep] != normal)
    return np.concatenate(feats), np.concatenate(flags), len(dataset)


def probe(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray,
          y_eval: np.ndarray, C: float = 1.0) -> Dict[str, float]:
    """Fit a balanced logistic regression, return fit / eval ROC-AUC.

    Args:
        x_fit (np.ndarray): float ``[M, C]`` features of the fit cells.
        y_fit (np.ndarray): bool ``[M]``, True for abnormal.
        x_eval (np.ndarray): float ``[K, C]``.
        y_eval (np.ndarray): bool ``[K]``.
        C (float): Inverse L2 strength.

    Returns:
        dict: ``fit_auc`` and ``eval_auc`` in [0, 1].
    """
    from sklearn.linear_model import LogisticRegression

    from cervdet.evaluation.metrics.roc_auc import binary_roc_auc
    mean = x_fit.mean(0, keepdims=True)
    std = x_fit.std(0, keepdims=True) + 1e-6
    clf = LogisticRegression(C=C, max_iter=5000, class_weight='balanced')
    clf.fit((x_fit - mean) / std, y_fit)
    return dict(
        fit_auc=binary_roc_auc(
            clf.decision_function((x_fit - mean) / std), y_fit),
        eval_auc=binary_roc_auc(
            clf.decision_function((x_eval - mean) / std), y_eval))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import cervdet  # noqa: F401  (registers ROIBagDataset)
    if args.out and osp.exists(args.out) and not args.force_overwrite:
        print(f'error: {args.out} exists; pass --force-overwrite',
              file=sys.stderr)
        return 2
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    cfg['_probe_normal'] = args.normal_class
    x_fit, y_fit, n_fit = load_split(cfg, args.fit_split, args.feature_cache)
    x_ev, y_ev, n_ev = load_split(cfg, args.eval_split, args.feature_cache)
    for name, y in ((args.fit_split, y_fit), (args.eval_split, y_ev)):
        if y.all() or not y.any():
            print(f'error: the {name} cells are all of one class',
                  file=sys.stderr)
            return 2
    res = probe(x_fit, y_fit, x_ev, y_ev, args.C)
    res.update(fit_split=args.fit_split, eval_split=args.eval_split,
               fit_cells=int(len(y_fit)), fit_abnormal=int(y_fit.sum()),
               fit_rois=n_fit, eval_cells=int(len(y_ev)),
               eval_abnormal=int(y_ev.sum()), eval_rois=n_ev, C=args.C,
               feature_cache=args.feature_cache or str(
                   cfg[f'{args.fit_split}_dataloader']['dataset'].get(
                       'feature_cache')))
    print(json.dumps(res, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
