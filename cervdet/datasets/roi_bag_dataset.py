"""Regions of interest as bags of cells, for weakly supervised ROI
classification (Shi et al., ISBI 2022, global-local attention network).

The annotation file is COCO detection (the cell boxes and cell classes) plus
the ROI labels::

    {"images": [{"id": 1, "file_name": "roi_0.jpg", "width": 512,
                 "height": 512, "roi_label": "LSIL"}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 2,
                      "bbox": [x, y, w, h], ...}, ...],
     "categories": [{"id": 1, "name": "NILM"}, ...],   # cell classes
     "roi_classes": ["NILM", "LSIL", "HSIL"],
     "cell_to_roi_class": {"NILM": "NILM", "ASC-US": "LSIL", ...}}

as written by ``tools/dataset_converters/build_roi_set.py``. A config::

    train_dataloader = dict(dataset=dict(
        type='ROIBagDataset', data_root='data/roi-cric-512',
        ann_file='annotations/train.json',
        data_prefix=dict(img_path='images/train/'),
        feature_cache='features/r50',          # cached mode (optional)
        pipeline=[dict(type='LoadCellFeatures'), dict(type='PackROIBagInputs')]))
"""
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.utils import is_abs
from mmpretrain.registry import DATASETS

#: Boxes may stick out of the ROI by this many pixels; they are clipped.
BOX_TOLERANCE: float = 1.0


def xywh_to_xyxy_checked(boxes: np.ndarray, width: float, height: float,
                         tol: float = BOX_TOLERANCE) -> Tuple[np.ndarray,
                                                              np.ndarray,
                                                              np.ndarray]:
    """Convert COCO boxes to xyxy, clip small overhangs, flag bad boxes.

    Args:
        boxes (np.ndarray): float ``[N, 4]`` ``(x, y, w, h)`` in pixels.
        width (float): ROI width.
        height (float): ROI height.
        tol (float): Largest overhang (pixels) that is clipped silently.

    Returns:
        tuple: ``(xyxy, outside, empty)``: float32 ``[N, 4]`` clipped boxes,
        bool ``[N]`` boxes sticking out by more than ``tol`` and bool ``[N]``
        boxes of zero area (after clipping).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    lo = np.array([0., 0., 0., 0.])
    hi = np.array([width, height, width, height], dtype=np.float64)
    outside = ((xyxy < lo - tol) | (xyxy > hi + tol)).any(axis=1)
    xyxy = np.clip(xyxy, lo, hi)
    empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
    return xyxy.astype(np.float32), outside, empty


def cache_name(img_path: str, root: Optional[str] = None) -> str:
    """Split-independent file name of an ROI's feature cache.

    The image path relative to ``root`` (when inside it, else the absolute
    path) with folder separators replaced by ``__`` and the extension by
    ``.npz``: ``images/train/roi_1.jpg`` -> ``images__train__roi_1.npz``.
    Unique as long as image paths are, so all splits can share one cache
    folder.

    Args:
        img_path (str): Path of the ROI image.
        root (str, optional): Folder the name is made relative to.

    Returns:
        str: The file name.
    """
    path = osp.normpath(osp.abspath(img_path))
    if root:
        root = osp.normpath(osp.abspath(root))
        if path.startswith(root + osp.sep):
            path = path[len(root) + 1:]
    stem = osp.splitext(path)[0].lstrip(osp.sep)
    return re.sub(r'[\\/:]+', '__', stem) + '.npz'


@DATASETS.register_module()
class ROIBagDataset(BaseDataset):
    """ROIs as bags of cells with ROI-level labels (cell labels optional).

    Each data info holds

    - ``img_path`` (str), ``img_id`` (int), ``ori_shape`` ``(h, w)``,
    - ``roi_label`` / ``gt_label`` (int): index in ``metainfo['classes']``
      (``-1`` when the image entry has no ``roi_label``, e.g. unlabelled
      ROIs to predict),
    - ``cell_bboxes`` (np.ndarray): float32 ``[N, 4]`` xyxy in ROI pixels,
    - ``cell_labels`` (np.ndarray): int64 ``[N]``, the cell's class mapped
      to the ROI class space through ``cell_to_roi_class`` (``-1`` when
      unknown: detections, or a cell class not mapped into ``classes``),
    - ``cell_scores`` (np.ndarray, detections only): float32 ``[N]``,
    - ``num_cells`` (int) = N >= 1,
    - ``cache_path`` (str, when ``feature_cache`` is set):
      ``<feature_cache>/<cache_name(img_path, data_root)>``.

    Args:
        ann_file (str): The annotation file (see the module docstring).
        cell_source (str): ``'annotations'`` (cells = the file's boxes) or
            ``'detections'`` (cells = the boxes of ``det_file``).
        det_file (str, optional): COCO results JSON of a detector run over
            the ROIs (``[{"image_id", "bbox", "score", "category_id"}]``),
            for ``cell_source='detections'``.
        det_score_thr (float): Detections below this score are dropped.
            Detected boxes are clipped to the ROI (boxes entirely outside
            are dropped); annotated boxes outside it are an error.
        feature_cache (str, optional): Folder of the cached cell features
            (``tools/roi_cls/extract_cell_features.py``); relative paths are
            joined with ``data_root``.
        empty_roi (str): What to do with an ROI without cells: ``'error'``
            (default) or ``'skip'`` (drop it with a warning).
        check_images (bool): Check that every image file exists. Defaults
            to True.
        metainfo (dict, optional): ``classes`` overrides the file's
            ``roi_classes``; ``cell_to_roi_class`` its mapping.
        **kwargs: See :class:`mmengine.dataset.BaseDataset` (``data_root``,
            ``data_prefix=dict(img_path=...)``, ``pipeline``, ...).
    """

    METAINFO: dict = dict()

    def __init__(self,
                 ann_file: str,
                 cell_source: str = 'annotations',
                 det_file: Optional[str] = None,
                 det_score_thr: float = 0.3,
                 feature_cache: Optional[str] = None,
                 empty_roi: str = 'error',
                 check_images: bool = True,
                 data_prefix: Optional[dict] = None,
                 **kwargs) -> None:
        if cell_source not in ('annotations', 'detections'):
            raise ValueError(f"ROIBagDataset: cell_source must be "
                             f"'annotations' or 'detections', got "
                             f"{cell_source!r}")
        if cell_source == 'detections' and not det_file:
            raise ValueError("ROIBagDataset: cell_source='detections' needs "
                             "det_file=<COCO results JSON of the detector>")
        if empty_roi not in ('error', 'skip'):
            raise ValueError(f"ROIBagDataset: empty_roi must be 'error' or "
                             f"'skip', got {empty_roi!r}")
        self.cell_source = cell_source
        self.det_file = det_file
        self.det_score_thr = float(det_score_thr)
        self.feature_cache = feature_cache
        self.empty_roi = empty_roi
        self.check_images = bool(check_images)
        super().__init__(ann_file=ann_file,
                         data_prefix=data_prefix or dict(img_path=''),
                         **kwargs)

    # ------------------------------------------------------------------
    def _join_prefix(self) -> None:
        """Also join ``det_file`` and ``feature_cache`` with ``data_root``."""
        super()._join_prefix()
        for key in ('det_file', 'feature_cache'):
            value = getattr(self, key)
            if value and not is_abs(value) and self.data_root:
                setattr(self, key, osp.join(self.data_root, value))

    def _read_json(self, path: str, what: str):
        """Load a JSON file with a clear error."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'ROIBagDataset: {what} {path} not found')
        try:
            with open(path) as f:
                return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'ROIBagDataset: {what} {path} is not valid '
                             f'JSON ({e})') from e

    def load_data_list(self) -> List[dict]:
        """Read and validate the annotation (and detection) file."""
        path = self.ann_file
        ann = self._read_json(path, 'annotation file')
        if not isinstance(ann, dict) or not ann.get('images'):
            raise ValueError(
                f'{path}: no ROIs (empty or missing "images"); an ROI '
                'annotation file is COCO plus "roi_classes" and a '
                '"roi_label" per image (build one with tools/'
                'dataset_converters/build_roi_set.py)')
        classes = self._metainfo.get('classes')
        if classes is None:
            if 'roi_classes' not in ann:
                raise ValueError(
                    f'{path}: no top-level "roi_classes" list; add it or '
                    'set metainfo=dict(classes=(...)) in the dataset config')
            classes = ann['roi_classes']
        classes = tuple(classes)
        mapping = dict(self._metainfo.get('cell_to_roi_class')
                       or ann.get('cell_to_roi_class') or {})
        cats = {int(c['id']): c['name'] for c in ann.get('categories', [])}
        self._metainfo.update(classes=classes, cell_classes=tuple(
            cats[k] for k in sorted(cats)), cell_to_roi_class=mapping)
        class_idx = {c: i for i, c in enumerate(classes)}
        # cell category id -> ROI class index (-1 when not mapped)
        cat_to_roi: Dict[int, int] = {
            k: class_idx.get(mapping.get(name, name), -1)
            for k, name in cats.items()}
        unmapped = sorted(n for k, n in cats.items() if cat_to_roi[k] < 0)
        if unmapped and self.cell_source == 'annotations':
            print_log(f'{path}: cell classes {unmapped} map to no ROI class '
                      f'of {list(classes)}; their cell labels are -1 '
                      '(unknown)', logger='current', level=30)

        if self.cell_source == 'annotations':
            cells = self._cells_from_annotations(ann, cats, cat_to_roi)
        else:
            cells = self._cells_from_detections(ann)

        img_prefix = self.data_prefix.get('img_path', '')
        data_list, skipped = [], []
        for img in ann['images']:
            img_id = int(img['id'])
            name = img.get('file_name')
            where = f'{path}: image id {img_id} ({name})'
            if 'width' not in img or 'height' not in img:
                raise ValueError(f'{where} has no "width"/"height"; add the '
                                 'ROI size in pixels to the image entry')
            w, h = float(img['width']), float(img['height'])
            img_path = osp.join(img_prefix, name)
            if self.check_images and not osp.isfile(img_path):
                raise FileNotFoundError(
                    f'{where}: image file {img_path} not found; check '
                    'data_root / data_prefix=dict(img_path=...) of the '
                    'dataset config')
            if 'roi_label' in img:
                if img['roi_label'] not in class_idx:
                    raise ValueError(
                        f'{where}: roi_label {img["roi_label"]!r} is not one '
                        f'of the ROI classes {list(classes)}; fix the file or '
                        'metainfo=dict(classes=...) of the dataset config')
                label = class_idx[img['roi_label']]
            else:
                label = -1
            boxes, labels, ids, scores = cells.get(
                img_id, (np.zeros((0, 4)), np.zeros(0, np.int64), [], None))
            xyxy, outside, empty = xywh_to_xyxy_checked(boxes, w, h)
            what = ('annotation id' if self.cell_source == 'annotations'
                    else f'detection (index in {self.det_file})')
            # a detector's boxes may stick out of the image (YOLOX does not
            # clip): clip them; an annotated box outside is a file error
            if outside.any() and self.cell_source == 'annotations':
                bad = int(np.flatnonzero(outside)[0])
                raise ValueError(
                    f'{where}: box of {what} {ids[bad]} {list(boxes[bad])} '
                    f'(xywh) lies outside the {w:g}x{h:g} ROI by more than '
                    f'{BOX_TOLERANCE:g} px; fix or remove the box, or correct '
                    'the image width/height')
            if empty.any():
                bad = np.flatnonzero(empty)
                if self.cell_source == 'annotations':
                    raise ValueError(
                        f'{where}: {what} {ids[bad[0]]} has a zero-area box '
                        f'{list(boxes[bad[0]])} (xywh); remove it or give it '
                        'a positive width and height')
                keep = ~empty
                xyxy, labels = xyxy[keep], labels[keep]
                scores = scores[keep] if scores is not None else None
            if len(xyxy) == 0:
                if self.empty_roi == 'skip':
                    skipped.append(f'{name} (id {img_id})')
                    continue
                src = ('annotations' if self.cell_source == 'annotations' else
                       f'detections with score >= {self.det_score_thr} in '
                       f'{self.det_file}')
                raise ValueError(
                    f'{where} has no cells ({src}); an ROI needs at least one '
                    'cell. Remove the image, add its cells, lower '
                    'det_score_thr, or set empty_roi="skip" in the dataset '
                    'config to drop such ROIs')
            info = dict(img_path=img_path, img_id=img_id,
                        ori_shape=(int(h), int(w)), roi_label=label,
                        gt_label=label, cell_bboxes=xyxy,
                        cell_labels=np.asarray(labels, dtype=np.int64),
                        num_cells=int(len(xyxy)))
            if scores is not None:
                info['cell_scores'] = np.asarray(scores, dtype=np.float32)
            if self.feature_cache:
                info['cache_path'] = osp.join(
                    self.feature_cache, cache_name(img_path, self.data_root))
            data_list.append(info)
        if skipped:
            print_log(f'{path}: skipped {len(skipped)} ROIs without cells '
                      f'(empty_roi="skip"): {skipped[:5]}'
                      f'{" ..." if len(skipped) > 5 else ""}',
                      logger='current', level=30)
        if not data_list:
            raise ValueError(f'{path}: no ROI with cells left')
        return data_list

    def _cells_from_annotations(self, ann: dict, cats: Dict[int, str],
                                cat_to_roi: Dict[int, int]) -> Dict:
        """Cells per image id from the annotation file's boxes."""
        groups: Dict[int, list] = {}
        for a in ann.get('annotations', []):
            if int(a['category_id']) not in cats:
                raise ValueError(
                    f'{self.ann_file}: annotation id {a.get("id")} has '
                    f'category_id {a["category_id"]} not in "categories" '
                    f'{sorted(cats)}')
            groups.setdefault(int(a['image_id']), []).append(a)
        out = {}
        for img_id, anns in groups.items():
            boxes = np.array([a['bbox'] for a in anns], np.float64)
            labels = np.array([cat_to_roi[int(a['category_id'])]
                               for a in anns], np.int64)
            out[img_id] = (boxes, labels, [a.get('id') for a in anns], None)
        return out

    def _cells_from_detections(self, ann: dict) -> Dict:
        """Cells per image id from ``det_file`` (score >= threshold)."""
        dets = self._read_json(self.det_file, 'det_file')
        if not isinstance(dets, list):
            raise ValueError(
                f'{self.det_file}: a detection file is a COCO results list '
                '[{"image_id", "bbox", "score", "category_id"}], got '
                f'{type(dets).__name__}')
        known = {int(img['id']) for img in ann['images']}
        groups: Dict[int, list] = {}
        for k, d in enumerate(dets):
            if not {'image_id', 'bbox', 'score'} <= set(d):
                raise ValueError(f'{self.det_file}: detection {k} lacks '
                                 '"image_id", "bbox" or "score"')
            if float(d['score']) >= self.det_score_thr:
                groups.setdefault(int(d['image_id']), []).append((k, d))
        unknown = sorted(set(groups) - known)
        if unknown:
            raise ValueError(
                f'{self.det_file}: detections for image ids {unknown[:5]} '
                f'not in {self.ann_file}; run the detector on this '
                'annotation file')
        out = {}
        for img_id, items in groups.items():
            boxes = np.array([d['bbox'] for _, d in items], np.float64)
            scores = np.array([d['score'] for _, d in items], np.float32)
            out[img_id] = (boxes, -np.ones(len(items), np.int64),
                           [k for k, _ in items], scores)
        return out

    # ------------------------------------------------------------------
    @property
    def CLASSES(self) -> Tuple[str, ...]:
        """ROI class names."""
        return tuple(self._metainfo['classes'])

    @property
    def class_to_idx(self) -> Dict[str, int]:
        """ROI class name -> index."""
        return {c: i for i, c in enumerate(self.CLASSES)}

    def get_gt_labels(self) -> np.ndarray:
        """ROI labels of all samples, int64 ``[len(self)]``."""
        return np.array([self.get_data_info(i)['roi_label']
                         for i in range(len(self))], dtype=np.int64)

    def get_cat_ids(self, idx: int) -> List[int]:
        """ROI class of sample ``idx`` as a list (for ClassBalancedDataset)."""
        label = int(self.get_data_info(idx)['roi_label'])
        return [label] if label >= 0 else []

    def class_counts(self) -> Dict[str, int]:
        """Number of ROIs per class."""
        labels = self.get_gt_labels()
        return {c: int((labels == i).sum()) for i, c in enumerate(self.CLASSES)}

    def __repr__(self) -> str:
        head = f'Dataset {self.__class__.__name__}'
        if not self._fully_initialized:
            return head + ' (not fully initialised)'
        lines = [head, f'    Number of ROIs: {len(self)}',
                 f'    Annotation file: {self.ann_file}',
                 f'    Cell source: {self.cell_source}',
                 f'    ROIs per class: {self.class_counts()}']
        return '\n'.join(lines)


__all__ = ['ROIBagDataset', 'cache_name', 'xywh_to_xyxy_checked']
