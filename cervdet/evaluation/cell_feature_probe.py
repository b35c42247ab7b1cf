"""Linear probe of a cell feature cache: can abnormal cells be told apart?

The logic of ``tools/roi_cls/probe_cell_features.py``.

A diagnostic of the cell encoder behind an ROI classifier (not part of the
weakly supervised pipeline: it uses the cell labels): a logistic regression
is fitted on the cached pooled features of the cells of the ``fit_split``
ROIs (labels: abnormal = a cell whose class maps to an ROI class other than
``normal_class``; cells without a label are left out) and its ROC-AUC of
abnormal vs normal is measured on the cells of the ``eval_split`` ROIs
(the project's :func:`cervdet.evaluation.metrics.roc_auc.binary_roc_auc`).
Features are standardised with the fit split's mean / std; classes are
balanced (``class_weight='balanced'``).

The caches are those of the config's datasets (``feature_cache``), or of
``feature_cache`` (a folder, relative to the dataset's ``data_root`` or
absolute), as written by ``tools/roi_cls/extract_cell_features.py``.
"""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from ..datasets.transforms import check_cache_boxes
from .metrics.roc_auc import binary_roc_auc


def load_split(cfg, split: str, feature_cache: Optional[str],
               normal_class: str = 'NILM'
               ) -> Tuple[np.ndarray, np.ndarray, int]:
    """Pooled features and abnormal flags of every labelled cell of a split.

    Args:
        cfg (Config): ROI classifier config with ROIBagDataset loaders.
        split (str): ``train``, ``val`` or ``test``.
        feature_cache (str, optional): Cache folder instead of the config's.
        normal_class (str): ROI class of the normal cells.

    Returns:
        tuple: ``(features float32 [M, C], abnormal bool [M], num_rois)``.

    Raises:
        FileNotFoundError: A cache file is missing (run the extractor).
        ValueError: A cache's boxes differ from the annotation (stale).
    """
    ds_cfg = cfg[f'{split}_dataloader']['dataset']
    while 'dataset' in ds_cfg and ds_cfg.get('type') != 'ROIBagDataset':
        ds_cfg = ds_cfg['dataset']
    ds_cfg = ds_cfg.copy()
    if feature_cache:
        ds_cfg['feature_cache'] = feature_cache
    ds_cfg['pipeline'] = []
    dataset = DATASETS.build(ds_cfg)
    normal = dataset.metainfo['classes'].index(normal_class)
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
    mean = x_fit.mean(0, keepdims=True)
    std = x_fit.std(0, keepdims=True) + 1e-6
    clf = LogisticRegression(C=C, max_iter=5000, class_weight='balanced')
    clf.fit((x_fit - mean) / std, y_fit)
    return dict(
        fit_auc=binary_roc_auc(
            clf.decision_function((x_fit - mean) / std), y_fit),
        eval_auc=binary_roc_auc(
            clf.decision_function((x_eval - mean) / std), y_eval))


def probe_cell_features(config: str, feature_cache: Optional[str] = None,
                        fit_split: str = 'train', eval_split: str = 'test',
                        normal_class: str = 'NILM', C: float = 1.0) -> Dict:
    """Probe the cached cell features of a config's ROI set.

    Args:
        config (str): ROI classifier config with ROIBagDataset loaders.
        feature_cache (str, optional): Cache folder instead of the config's.
        fit_split (str): Split the probe is fitted on.
        eval_split (str): Split it is measured on.
        normal_class (str): ROI class of the normal cells.
        C (float): Inverse L2 strength.

    Returns:
        dict: ``fit_auc``, ``eval_auc`` and the cell / ROI counts.

    Raises:
        ValueError: The cells of a split are all of one class, or a cache
            is stale.
        FileNotFoundError: A cache is missing.
    """
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    x_fit, y_fit, n_fit = load_split(cfg, fit_split, feature_cache,
                                     normal_class)
    x_ev, y_ev, n_ev = load_split(cfg, eval_split, feature_cache,
                                  normal_class)
    for name, y in ((fit_split, y_fit), (eval_split, y_ev)):
        if y.all() or not y.any():
            raise ValueError(f'the {name} cells are all of one class')
    res = probe(x_fit, y_fit, x_ev, y_ev, C)
    res.update(fit_split=fit_split, eval_split=eval_split,
               fit_cells=int(len(y_fit)), fit_abnormal=int(y_fit.sum()),
               fit_rois=n_fit, eval_cells=int(len(y_ev)),
               eval_abnormal=int(y_ev.sum()), eval_rois=n_ev, C=C,
               feature_cache=feature_cache or str(
                   cfg[f'{fit_split}_dataloader']['dataset'].get(
                       'feature_cache')))
    return res


__all__ = ['load_split', 'probe', 'probe_cell_features']
