"""Slides as bags of their top-k detected cells, for the learned slide call
(:class:`~cervdet.models.classifiers.SlideMILClassifier`).

``tools/slide_infer.py`` writes, per slide, ``OUT/<slide_stem>/`` with

* ``cells_topk.npz``: ``bboxes`` float32 [K, 4] (level-0 xyxy), ``scores``
  float32 [K] (cell abnormality = max score over the abnormal classes),
  ``labels`` int64 [K], ``feats`` float32 [K, C] (optional), ``classes``
  (str array of the detector classes); ``K = 0`` is allowed (nothing
  detected);
* ``report.json`` (with ``"slide": <name>``).

The labels file is a CSV with the header ``slide,label``; ``label`` is one
of ``metainfo['classes']`` (Bethesda grades such as ``NILM, LSIL, HSIL``, or
``negative, positive``). ``slide`` is the folder name under ``bag_root``. A
config::

    train_dataloader = dict(dataset=dict(
        type='SlideBagDataset', data_root='data/cervical-slide-bags',
        ann_file='labels/train.csv', bag_root='bags/',
        metainfo=dict(classes=('NILM', 'LSIL', 'HSIL'))))

Each item is ``dict(inputs=dict(scores=Tensor[K], feats=Tensor[K, C],
bboxes=Tensor[K, 4]), data_samples=DataSample)`` (collated by mmengine's
``pseudo_collate``); the sample has ``gt_label`` (grade index) and the
metainfo ``slide``, ``is_positive``, ``bag_path``, ``num_cells``. Top-k
truncation (by score) and padding happen in the model's data preprocessor.
"""
import csv
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.utils import is_abs
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample

BAG_FILE = 'cells_topk.npz'


def read_slide_labels(path: str) -> List[Dict[str, str]]:
    """Rows of a ``slide,label`` CSV (header required).

    Args:
        path (str): The CSV file.

    Returns:
        list[dict]: ``{'slide': str, 'label': str}`` per row, in file order.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: Without the header, on empty cells, duplicated slides or
            when the file has no slide.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'slide labels file {path} not found; write '
                                'a CSV with the header "slide,label"')
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        if 'slide' not in fields or 'label' not in fields:
            raise ValueError(f'{path}: the first line must be the header '
                             f'"slide,label"; got {reader.fieldnames}')
        rows, seen = [], {}
        for line, row in enumerate(reader, start=2):
            row = {(k or '').strip(): (v or '').strip()
                   for k, v in row.items()}
            if not row['slide'] and not row['label']:
                continue  # blank line
            if not row['slide'] or not row['label']:
                raise ValueError(f'{path}, line {line}: empty slide or label '
                                 f'({row["slide"]!r}, {row["label"]!r})')
            if row['slide'] in seen:
                raise ValueError(f'{path}, line {line}: slide '
                                 f'{row["slide"]!r} already listed on line '
                                 f'{seen[row["slide"]]}; list each slide once')
            seen[row['slide']] = line
            rows.append(dict(slide=row['slide'], label=row['label']))
    if not rows:
        raise ValueError(f'{path} lists no slide: add "slide,label" rows '
                         '(one per slide)')
    return rows


def load_slide_bag(path: str) -> Dict[str, np.ndarray]:
    """Read and check one ``cells_topk.npz``.

    Args:
        path (str): The bag file.

    Returns:
        dict: ``scores`` float32 [K], ``feats`` float32 [K, C] (``[K, 0]``
        when the file has none), ``bboxes`` float32 [K, 4] (zeros when
        missing), ``labels`` int64 [K] (-1 when missing) and ``classes``
        (list of str, may be empty).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:
        raise ValueError(f'{path}: cannot read the cell bag ({e}); re-run '
                         'tools/slide_infer.py on this slide') from e
    if 'scores' not in data:
        raise ValueError(f'{path}: no "scores" array (keys {sorted(data)}); '
                         'a bag needs scores float32 [K]')
    scores = np.asarray(data['scores'], np.float32).reshape(-1)
    k = scores.shape[0]
    feats = data.get('feats')
    feats = np.zeros((k, 0), np.float32) if feats is None else \
        np.asarray(feats, np.float32)
    if feats.ndim == 1 and k == 0:
        feats = feats.reshape(0, 0)
    if feats.ndim != 2 or feats.shape[0] != k:
        raise ValueError(f'{path}: "feats" must be [K, C] with K={k} like '
                         f'"scores"; got shape {feats.shape}')
    bboxes = data.get('bboxes')
    bboxes = np.zeros((k, 4), np.float32) if bboxes is None else \
        np.asarray(bboxes, np.float32).reshape(-1, 4)
    if bboxes.shape[0] != k:
        raise ValueError(f'{path}: "bboxes" has {bboxes.shape[0]} rows for '
                         f'{k} scores')
    labels = data.get('labels')
    labels = -np.ones(k, np.int64) if labels is None else \
        np.asarray(labels, np.int64).reshape(-1)
    if labels.shape[0] != k:
        raise ValueError(f'{path}: "labels" has {labels.shape[0]} entries for '
                         f'{k} scores')
    if not np.isfinite(scores).all() or not np.isfinite(feats).all():
        raise ValueError(f'{path}: non-finite scores or feats; re-run '
                         'tools/slide_infer.py on this slide')
    classes = [str(c) for c in np.asarray(data.get('classes', [])).reshape(-1)]
    return dict(scores=scores, feats=feats, bboxes=bboxes, labels=labels,
                classes=classes)


@DATASETS.register_module()
class SlideBagDataset(BaseDataset):
    """Slide-level labels + the top-k cell bags of ``tools/slide_infer.py``.

    Each data info holds ``slide`` (str), ``bag_path`` (str),
    ``gt_label`` (int, index in ``metainfo['classes']``) and ``is_positive``
    (bool: the label is not one of ``negative_classes``).

    Args:
        ann_file (str): The ``slide,label`` CSV (joined with ``data_root``
            when relative).
        bag_root (str): The slide_infer output folder holding
            ``<slide>/cells_topk.npz`` (joined with ``data_root`` when
            relative). Defaults to ``''`` (= ``data_root``).
        negative_classes (Sequence[str], optional): Classes of negative
            slides; defaults to the first class (``NILM`` / ``negative``).
        metainfo (dict, optional): ``classes``: the ordered label names.
            Defaults to ``('negative', 'positive')``.
        **kwargs: See :class:`mmengine.dataset.BaseDataset` (``data_root``,
            ``pipeline`` (optional transforms on the loaded bag dict with keys
            ``cell_scores``, ``cell_feats``, ``cell_bboxes``,
            ``cell_labels``), ``test_mode``, ...).
    """

    METAINFO: dict = dict(classes=('negative', 'positive'))

    def __init__(self,
                 ann_file: str,
                 bag_root: str = '',
                 negative_classes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        self.bag_root = bag_root
        self.negative_classes = (tuple(negative_classes)
                                 if negative_classes is not None else None)
        kwargs.setdefault('pipeline', [])
        super().__init__(ann_file=ann_file, **kwargs)

    def _join(self, path: str) -> str:
        if path and not is_abs(path) and self.data_root:
            return osp.join(self.data_root, path)
        return path or (self.data_root or '')

    def load_data_list(self) -> List[dict]:
        """Read the labels CSV and check that every slide has a bag."""
        classes = tuple(self._metainfo['classes'])
        if len(classes) < 2:
            raise ValueError(f'SlideBagDataset: metainfo classes {classes} '
                             'need at least 2 labels')
        negatives = self.negative_classes or (classes[0], )
        bad = [c for c in negatives if c not in classes]
        if bad:
            raise ValueError(f'SlideBagDataset: negative_classes {bad} are '
                             f'not in the classes {list(classes)}')
        self._metainfo.update(classes=classes,
                              negative_classes=tuple(negatives))
        idx = {c: i for i, c in enumerate(classes)}
        rows = read_slide_labels(self.ann_file)
        root = self._join(self.bag_root)
        data_list, missing = [], []
        for row in rows:
            if row['label'] not in idx:
                raise ValueError(
                    f'{self.ann_file}: slide {row["slide"]!r} has the label '
                    f'{row["label"]!r}, not one of the classes {list(classes)}'
                    '; fix the CSV or metainfo=dict(classes=...) of the '
                    'dataset config')
            bag = osp.join(root, row['slide'], BAG_FILE)
            if not osp.isfile(bag):
                missing.append(bag)
                continue
            data_list.append(dict(
                slide=row['slide'], bag_path=bag,
                gt_label=idx[row['label']],
                is_positive=row['label'] not in negatives))
        if missing:
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} slides have no cell bag, '
                f'e.g. {missing[:3]}; run tools/slide_infer.py on them '
                f'(--out-dir {root}), fix bag_root, or remove them from the '
                'CSV')
        return data_list

    def prepare_data(self, idx: int) -> dict:
        """Load the bag of slide ``idx``, run the pipeline, pack it."""
        info = self.get_data_info(idx)
        bag = load_slide_bag(info['bag_path'])
        info.update(cell_scores=bag['scores'], cell_feats=bag['feats'],
                    cell_bboxes=bag['bboxes'], cell_labels=bag['labels'],
                    det_classes=bag['classes'], num_cells=len(bag['scores']))
        results = self.pipeline(info)
        if results is None:
            return None
        return self.pack(results)

    @staticmethod
    def pack(results: dict) -> dict:
        """``dict(inputs=dict(scores, feats, bboxes), data_samples)``."""
        inputs = dict(
            scores=torch.from_numpy(np.ascontiguousarray(
                results['cell_scores'], np.float32)),
            feats=torch.from_numpy(np.ascontiguousarray(
                results['cell_feats'], np.float32)),
            bboxes=torch.from_numpy(np.ascontiguousarray(
                results['cell_bboxes'], np.float32)))
        sample = DataSample()
        if int(results.get('gt_label', -1)) >= 0:
            sample.set_gt_label(int(results['gt_label']))
        sample.set_metainfo(dict(
            slide=results['slide'], bag_path=results['bag_path'],
            is_positive=bool(results['is_positive']),
            num_cells=int(len(results['cell_scores']))))
        return dict(inputs=inputs, data_samples=sample)

    # ------------------------------------------------------------------
    @property
    def CLASSES(self) -> tuple:
        """Slide label names."""
        return tuple(self._metainfo['classes'])

    def get_gt_labels(self) -> np.ndarray:
        """Labels of all slides, int64 ``[len(self)]``."""
        return np.array([self.get_data_info(i)['gt_label']
                         for i in range(len(self))], np.int64)

    def get_cat_ids(self, idx: int) -> List[int]:
        """Label of slide ``idx`` as a list (for ClassBalancedDataset)."""
        return [int(self.get_data_info(idx)['gt_label'])]


__all__ = ['SlideBagDataset', 'read_slide_labels', 'load_slide_bag']
