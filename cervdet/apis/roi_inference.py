"""Classify regions of interest (ROIs) from their pixels with a trained
global-local ROI classifier (Shi et al., ISBI 2022) and, optionally, a cervdet
detector that finds the cells.

The ROI classifier may have been trained on cached cell features (its
``model`` config has no ``cell_encoder``): the config's top-level
``cell_encoder`` (the backbone the cache was extracted with) is then attached
and loaded from ``encoder_checkpoint``, and crops are made and normalised
exactly as ``tools/roi_cls/extract_cell_features.py`` does (crop size
``cfg.cell_size``, context ``cfg.cell_context``, mean/std/to_rgb from
``cfg.model.data_preprocessor``, else ImageNet's on RGB). A model trained from
pixels keeps its own encoder (from the ROI checkpoint) and its data
preprocessor's normalisation.

In both cases the cells are encoded in chunks and the model runs in cached
mode on the features (``pooled`` Tensor[1, N, C], ``maps``
Tensor[1, N, C, h, w]): the same numbers as its pixel mode, without a
``[N, 3, S, S]`` float tensor of all cells in memory.

Usage::

    from cervdet.apis import ROIInferencer
    inferencer = ROIInferencer(
        'configs/roi_cls/<roi config>.py', 'work_dirs/roi/epoch_90.pth',
        det_config='configs/retinanet/<detector>.py',
        det_checkpoint='work_dirs/det/epoch_24.pth',
        encoder_checkpoint='r50.pth', encoder_checkpoint_prefix='backbone.')
    result = inferencer('roi.jpg')          # cells from the detector
    result = inferencer(img, boxes=xyxy)    # or from given boxes [N, 4]
"""
import json
import os.path as osp
import time
import warnings
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.datasets.transforms.crop_cells import crop_and_resize, expand_boxes
from cervdet.models.utils.normalization import preprocessor_normalization
from cervdet.models.utils.pooling import pool_backbone_output
from cervdet.utils.constants import IMAGENET_MEAN, IMAGENET_STD  # RGB, the default

from .det_init import init_detector_strict
from .pipeline_cfg import split_pipelines
from .roi_model import build_roi_model, roi_classes


def cell_normalisation(cfg: Config) -> Tuple[np.ndarray, np.ndarray, bool]:
    """``(mean, std, to_rgb)`` of the cell crops a cached-feature config saw.

    The rule of ``tools/roi_cls/extract_cell_features.py``'s
    ``normalisation``: ``cfg.model.data_preprocessor``'s ``mean``/``std``/
    ``to_rgb`` (``to_rgb`` defaulting to False) when it sets ``mean``, else
    ImageNet's mean/std on RGB.

    Returns:
        tuple: float32 ``[3]`` mean, float32 ``[3]`` std, bool to_rgb.
    """
    pre = (cfg.get('model') or {}).get('data_preprocessor') or {}
    if pre.get('mean') is None:
        return (np.asarray(IMAGENET_MEAN, np.float32),
                np.asarray(IMAGENET_STD, np.float32), True)
    return (np.asarray(pre['mean'], np.float32),
            np.asarray(pre['std'], np.float32),
            bool(pre.get('to_rgb', pre.get('bgr_to_rgb', False))))


def select_detections(bboxes: np.ndarray, scores: np.ndarray,
                      labels: np.ndarray, score_thr: float, max_cells: int,
                      img_shape: Tuple[int, int]) -> Tuple[np.ndarray,
                                                           np.ndarray,
                                                           np.ndarray]:
    """Keep the cells of a detection result.

    Boxes are clipped to the image, zero-area boxes and boxes below
    ``score_thr`` dropped, and the ``max_cells`` best kept, by decreasing
    score.

    Args:
        bboxes (np.ndarray): float ``[M, 4]`` xyxy.
        scores (np.ndarray): float ``[M]``.
        labels (np.ndarray): int ``[M]`` detector class indices.
        score_thr (float): Lowest kept score.
        max_cells (int): Most cells kept.
        img_shape (tuple[int, int]): ``(h, w)``.

    Returns:
        tuple: ``(bboxes [K, 4] float32, scores [K] float32, labels [K]
        int64)``, ``K <= max_cells``.
    """
    h, w = img_shape
    bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4).copy()
    scores = np.asarray(scores, np.float32).reshape(-1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    bboxes[:, 0::2] = bboxes[:, 0::2].clip(0, w)
    bboxes[:, 1::2] = bboxes[:, 1::2].clip(0, h)
    keep = (scores >= score_thr) & (bboxes[:, 2] > bboxes[:, 0]) & \
        (bboxes[:, 3] > bboxes[:, 1])
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-scores[idx], kind='stable')][:max(int(max_cells),
                                                            0)]
    return bboxes[idx], scores[idx], labels[idx]


def load_coco_boxes(ann_file: str) -> Dict[str, dict]:
    """Cell boxes per image of a COCO annotation file.

    Args:
        ann_file (str): COCO JSON (``images``, ``annotations`` with xywh
            ``bbox``; optional ``categories``, ``roi_label``).

    Returns:
        dict: ``{file_name: dict(boxes=float32 [N, 4] xyxy,
        cell_classes=[category name | None], roi_label=str | None)}``,
        each image under its ``file_name`` and, when unique, its base name.

    Raises:
        ValueError: If the file is not a COCO annotation file.
    """
    try:
        with open(ann_file) as f:
            ann = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'--ann-file {ann_file}: cannot read it as JSON '
                         f'({e})') from e
    if not isinstance(ann, dict) or 'images' not in ann:
        raise ValueError(f'--ann-file {ann_file}: not a COCO annotation file '
                         '(a dict with "images" and "annotations"); a '
                         'detector results list goes through a detector run '
                         'instead (--det-config/--det-checkpoint)')
    cats = {int(c['id']): c['name'] for c in ann.get('categories', [])}
    per_img: Dict[int, list] = {}
    for a in ann.get('annotations', []):
        per_img.setdefault(int(a['image_id']), []).append(a)
    full: Dict[str, dict] = {}
    by_base: Dict[str, List[dict]] = {}
    for img in ann['images']:
        anns = per_img.get(int(img['id']), [])
        xywh = np.array([a['bbox'] for a in anns], np.float32).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        entry = dict(boxes=xyxy,
                     cell_classes=[cats.get(int(a.get('category_id', -1)))
                                   for a in anns],
                     roi_label=img.get('roi_label'))
        full[img['file_name']] = entry
        by_base.setdefault(osp.basename(img['file_name']), []).append(entry)
    # a base name that is unique also finds its image (full names first)
    out = {b: e[0] for b, e in by_base.items() if len(e) == 1}
    out.update(full)
    return out


def pipeline_crop(cfg: Config) -> Optional[dict]:
    """The ``CropCells`` step of the test (else val) pipeline
    (:func:`cervdet.apis.pipeline_cfg.split_pipelines`)."""
    for _, pipeline in split_pipelines(cfg):
        for step in pipeline:
            if str(step.get('type', '')).split('.')[-1] == 'CropCells':
                return step
    return None


def cell_crop_settings(cfg: Config, model: torch.nn.Module,
                       attached_encoder: bool, config_path: Optional[str]
                       ) -> Tuple[int, float, torch.Tensor, torch.Tensor,
                                  bool]:
    """How the cells of an ROI are cropped and normalised.

    A model with an attached encoder (trained on cached features) sees the
    crops of ``tools/roi_cls/extract_cell_features.py``: ``cfg.cell_size``,
    ``cfg.cell_context`` and :func:`cell_normalisation`. A pixel model sees
    what its training did: the test pipeline's ``CropCells`` size and
    context, its data preprocessor's mean/std/to_rgb.

    Returns:
        tuple: ``(cell_size, cell_context, mean Tensor[3], std Tensor[3],
        to_rgb)``.

    Raises:
        ValueError: When the config has no top-level ``cell_size``.
    """
    if 'cell_size' not in cfg:
        raise ValueError(f'{config_path} has no top-level cell_size')
    size = int(cfg.cell_size)
    context = float(cfg.get('cell_context', 0.0))
    if attached_encoder:
        mean, std, to_rgb = cell_normalisation(cfg)
        return size, context, torch.from_numpy(mean), torch.from_numpy(
            std), to_rgb
    # exactly what the model's data preprocessor does
    norm = preprocessor_normalization(model.data_preprocessor)
    to_rgb = norm.to_rgb
    mean_t, std_t = (t.view(3).cpu() for t in norm.mean_std(3))
    crop = pipeline_crop(cfg)
    if crop is not None:
        size = int(crop.get('size', size))
        context = float(crop.get('context', context))
    return size, context, mean_t, std_t, to_rgb


class ROIInferencer:
    """ROI classification from pixels: cells (detector or given boxes) ->
    crops -> cell encoder -> ROI classifier.

    Args:
        roi_config (str | Config): ROI classifier config (mmpretrain scope,
            top-level ``cell_size`` and ``cell_encoder``).
        roi_checkpoint (str): Checkpoint of the ROI classifier.
        det_config (str | Config, optional): A cervdet / mmdet detector
            config giving the cells; None -> boxes must be given per call.
        det_checkpoint (str, optional): Detector checkpoint.
        det_score_thr (float): Lowest detection score of a cell.
        det_max_cells (int): Most cells per ROI (best scores kept).
        encoder_checkpoint (str, optional): Cell encoder weights for a model
            trained on cached features (the checkpoint the cache was
            extracted with); also overrides the encoder of a pixel model.
        encoder_checkpoint_prefix (str): Key prefix of the encoder in
            ``encoder_checkpoint`` (``'backbone.'`` for a classifier).
        device (str): ``'cpu'`` or ``'cuda[:i]'``.
        allow_random_encoder (bool): Accept a cached-feature model without
            ``encoder_checkpoint`` (and no local ``init_cfg``): the encoder
            is then random, which only matches a cache made with a random
            encoder of the same seed. Defaults to False (refuse).
        encoder_batch (int): Cells per encoder forward pass.

    Raises:
        ValueError: On a config without ``cell_size``/``cell_encoder``, a
            checkpoint that does not fit the model, or a missing encoder
            checkpoint (see ``allow_random_encoder``).
    """

    def __init__(self,
                 roi_config: Union[str, Config],
                 roi_checkpoint: str,
                 det_config: Union[str, Config, None] = None,
                 det_checkpoint: Optional[str] = None,
                 det_score_thr: float = 0.3,
                 det_max_cells: int = 1000,
                 encoder_checkpoint: Optional[str] = None,
                 encoder_checkpoint_prefix: str = '',
                 device: str = 'cpu',
                 allow_random_encoder: bool = False,
                 encoder_batch: int = 64) -> None:
        import cervdet  # noqa: F401  (registers the ROI modules)
        self.cfg = roi_config if isinstance(roi_config, Config) else \
            Config.fromfile(str(roi_config))
        self.config_path = None if isinstance(roi_config, Config) else \
            str(roi_config)
        self.device = torch.device(device)
        self.det_score_thr = float(det_score_thr)
        self.det_max_cells = int(det_max_cells)
        self.encoder_batch = int(encoder_batch)
        model, meta, self.attached_encoder = build_roi_model(
            self.cfg, str(roi_checkpoint), self.config_path,
            encoder_checkpoint, encoder_checkpoint_prefix,
            allow_random_encoder)
        self.model = model.to(self.device).eval()
        self.classes: List[str] = roi_classes(model, meta, self.cfg)
        (self.cell_size, self.cell_context, self.mean, self.std,
         self.to_rgb) = cell_crop_settings(self.cfg, model,
                                           self.attached_encoder,
                                           self.config_path)
        self.detector, self.det_classes = self._build_detector(
            det_config, det_checkpoint)

    def _build_detector(self, det_config, det_checkpoint):
        """The cell detector and its class names (None, None without
        ``det_config``)."""
        if det_config is None:
            return None, None
        if det_checkpoint is None:
            warnings.warn('ROIInferencer: det_config without '
                          'det_checkpoint: the detector is untrained',
                          stacklevel=3)
        detector = init_detector_strict(
            det_config if isinstance(det_config, Config)
            else str(det_config), det_checkpoint, self.device)
        return detector, list(detector.dataset_meta.get('classes', []))

    # ------------------------------------------------------------------
    def detect(self, img: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                               np.ndarray]:
        """Cells of a BGR image from the detector.

        Returns:
            tuple: ``(bboxes [K, 4] xyxy, scores [K], labels [K])`` (see
            :func:`select_detections`).
        """
        from mmdet.apis import inference_detector
        with DefaultScope.overwrite_default_scope('mmdet'):
            det = inference_detector(self.detector, img)
        inst = det.pred_instances
        return select_detections(inst.bboxes.cpu().numpy(),
                                 inst.scores.cpu().numpy(),
                                 inst.labels.cpu().numpy(),
                                 self.det_score_thr, self.det_max_cells,
                                 img.shape[:2])

    @torch.no_grad()
    def encode(self, img: np.ndarray, boxes: np.ndarray
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Stage-4 maps and pooled features of the cells.

        Cropped (:func:`crop_and_resize`) and encoded ``encoder_batch``
        cells at a time.

        Args:
            img (np.ndarray): uint8 ``[H, W, 3]`` BGR.
            boxes (np.ndarray): float ``[N, 4]`` xyxy.

        Returns:
            tuple: ``pooled`` Tensor[N, C] and ``maps`` Tensor[N, C, h, w]
            on the inferencer's device.
        """
        boxes = expand_boxes(boxes, self.cell_context)
        mean = self.mean.view(1, 3, 1, 1).to(self.device)
        std = self.std.view(1, 3, 1, 1).to(self.device)
        maps = []
        for start in range(0, len(boxes), self.encoder_batch):
            crops = crop_and_resize(img, boxes[start:start +
                                               self.encoder_batch],
                                    self.cell_size)  # [n, 3, S, S] uint8
            x = torch.from_numpy(crops).to(self.device)
            if self.to_rgb:
                x = x.flip(1)
            x = (x.float() - mean) / std
            maps.append(self.model._encode(x))
        maps = torch.cat(maps)
        return pool_backbone_output(maps), maps

    @torch.no_grad()
    def classify(self, pooled: torch.Tensor,
                 maps: Optional[torch.Tensor]) -> dict:
        """Run the ROI classifier on the features of one ROI.

        Args:
            pooled (Tensor[N, C]): Pooled cell features.
            maps (Tensor[N, C, h, w], optional): Stage-4 maps.

        Returns:
            dict: ``scores`` Tensor[K], ``attention`` Tensor[N] and, with
            cell branches, ``cell_scores`` Tensor[N, K] (CPU tensors).
        """
        inputs = dict(pooled=pooled[None],
                      mask=torch.ones(1, len(pooled), dtype=torch.bool,
                                      device=pooled.device))
        if maps is not None and self.model.local_branch is not None:
            inputs['maps'] = maps[None]
        sample = self.model.predict(inputs)[0]
        out = dict(scores=sample.pred_score.cpu(),
                   attention=sample.cell_attention.cpu())
        if 'cell_scores' in sample:
            out['cell_scores'] = sample.cell_scores.cpu()
        return out

    def _empty(self, result: dict, reason: str) -> dict:
        result.update(roi_class=None, roi_label=None, roi_scores=None,
                      cells=[], num_cells=0, reason=reason)
        return result

    def __call__(self, img_or_path: Union[str, np.ndarray],
                 boxes: Optional[np.ndarray] = None) -> dict:
        """Classify one ROI.

        Args:
            img_or_path (str | np.ndarray): Image path or uint8 BGR
                ``[H, W, 3]``.
            boxes (np.ndarray, optional): float ``[N, 4]`` xyxy cell boxes;
                None -> the detector finds them.

        Returns:
            dict: ``img_path``, ``img_shape`` ``[h, w]``, ``classes``,
            ``roi_class`` (None when the ROI has no cell, with a
            ``reason``), ``roi_label`` (index), ``roi_scores``
            ``{class: prob}``, ``cells``: list of ``{bbox [x1, y1, x2, y2],
            attention, det_score, det_label (detector class name), cell_scores
            {class: prob}, cell_class}`` (``det_*`` with a detector,
            ``cell_*`` when the model has cell branches), ``num_cells``,
            ``cell_source`` and ``timing`` (seconds per stage).

        Raises:
            FileNotFoundError: If the image cannot be read.
            ValueError: Without boxes and without a detector.
        """
        import mmcv
        t0 = time.perf_counter()
        timing = {}
        if isinstance(img_or_path, np.ndarray):
            img, path = img_or_path, None
        else:
            path = str(img_or_path)
            img = mmcv.imread(path, channel_order='bgr') \
                if osp.isfile(path) else None
            if img is None:
                raise FileNotFoundError(
                    f'cannot read image {path} (missing, corrupt or not an '
                    'image)')
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f'{path or "image"}: expected a uint8 [H, W, 3] '
                             f'BGR image, got {img.dtype} {img.shape}')
        timing['load'] = time.perf_counter() - t0
        result = dict(img_path=path, img_shape=list(img.shape[:2]),
                      classes=list(self.classes))
        det_scores = det_labels = None
        if boxes is None:
            if self.detector is None:
                raise ValueError('no cell boxes given and no detector: pass '
                                 'boxes=[N, 4] xyxy or build the inferencer '
                                 'with det_config/det_checkpoint')
            t = time.perf_counter()
            boxes, det_scores, det_labels = self.detect(img)
            timing['detect'] = time.perf_counter() - t
            result['cell_source'] = 'detector'
        else:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            h, w = img.shape[:2]
            boxes = boxes.copy()
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            if not ok.all():
                warnings.warn(f'{path or "image"}: {int((~ok).sum())} given '
                              'boxes are empty inside the image; dropped')
            boxes = boxes[ok]
            result['cell_source'] = 'boxes'
        if len(boxes) == 0:
            reason = (f'no cell detected with score >= {self.det_score_thr}'
                      if det_scores is not None else 'no cell box given')
            timing['total'] = time.perf_counter() - t0
            result['timing'] = timing
            return self._empty(result, reason)

        t = time.perf_counter()
        pooled, maps = self.encode(img, boxes)
        timing['encode'] = time.perf_counter() - t
        t = time.perf_counter()
        out = self.classify(pooled, maps)
        timing['classify'] = time.perf_counter() - t

        scores = out['scores'].numpy().astype(float)
        label = int(scores.argmax())
        attention = out['attention'].numpy().astype(float)
        cells: List[dict] = [dict(bbox=[round(float(v), 2) for v in b],
                                  attention=float(a))
                             for b, a in zip(boxes, attention)]
        if det_scores is not None:
            names = self.det_classes or []
            for c, s, lab in zip(cells, det_scores, det_labels):
                c['det_score'] = float(s)
                c['det_label'] = names[lab] if 0 <= lab < len(names) \
                    else int(lab)
        if 'cell_scores' in out:
            cs = out['cell_scores'].numpy().astype(float)
            top = cs.argmax(axis=1)
            for c, row, k in zip(cells, cs, top):
                c['cell_scores'] = dict(zip(self.classes, row.tolist()))
                c['cell_class'] = self.classes[int(k)]
        timing['total'] = time.perf_counter() - t0
        result.update(roi_class=self.classes[label], roi_label=label,
                      roi_scores=dict(zip(self.classes, scores.tolist())),
                      cells=cells, num_cells=len(cells), timing=timing)
        return result


__all__ = ['ROIInferencer', 'cell_normalisation', 'cell_crop_settings',
           'pipeline_crop', 'load_coco_boxes', 'select_detections']
