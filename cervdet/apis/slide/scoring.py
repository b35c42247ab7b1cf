"""Scoring: cell abnormality scores, the top-k cells with their features, the
slide scores of every aggregator and, with calibrated thresholds, the slide
call.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.models.utils.normalization import preprocessor_normalization
from cervdet.models.utils.pooling import pool_backbone_output
from cervdet.utils.slide_merge import index_dets

from .settings import ScoreSettings

#: Class names read as negative (not abnormal) by default.
NEGATIVE_CLASS_NAMES = ('nilm', 'normal', 'negative', 'background')


def resolve_abnormal_classes(classes: Sequence[str],
                             abnormal_classes: Optional[Sequence[str]]
                             ) -> List[str]:
    """The abnormal classes: the given ones (checked against ``classes``),
    else every class not named like :data:`NEGATIVE_CLASS_NAMES`.

    Raises:
        ValueError: On an unknown class, or when no class is abnormal.
    """
    if abnormal_classes is None:
        abnormal = [c for c in classes
                    if c.lower() not in NEGATIVE_CLASS_NAMES]
    else:
        unknown = [c for c in abnormal_classes if c not in classes]
        if unknown:
            raise ValueError(f'abnormal_classes {unknown} are not classes '
                             f'of the detector {list(classes)}')
        abnormal = list(abnormal_classes)
    if not abnormal:
        raise ValueError(f'no abnormal class among {list(classes)}: pass '
                         'abnormal_classes')
    return abnormal


def build_aggregators(topk_mean_k: int) -> Dict[str, torch.nn.Module]:
    """The rule aggregators of every report: ``max`` and ``topk_mean``."""
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return dict(
            max=MODELS.build(dict(type='MaxScoreAggregator')),
            topk_mean=MODELS.build(dict(type='TopKMeanAggregator',
                                        k=topk_mean_k)))


def build_mil(mil_config: Optional[str], mil_checkpoint: Optional[str],
              cell_feature_size: int, device: torch.device):
    """The slide MIL classifier (None without ``mil_config``).

    Raises:
        FileNotFoundError: Without its checkpoint.
        ValueError: When cell features are off (``cell_feature_size``).
    """
    if mil_config is None:
        return None
    if mil_checkpoint is None or not osp.isfile(str(mil_checkpoint)):
        raise FileNotFoundError(
            f'mil_checkpoint {mil_checkpoint} not found: the slide MIL '
            'model needs the checkpoint trained with '
            f'{mil_config} (tools/train.py)')
    if cell_feature_size <= 0:
        raise ValueError('the slide MIL model needs cell features: set '
                         'cell_feature_size > 0')
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(mil_config))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        mil = MODELS.build(cfg.model)
    load_checkpoint(mil, str(mil_checkpoint), map_location='cpu',
                    strict=True)
    return mil.to(device).eval()


def load_thresholds(thresholds) -> Optional[dict]:
    """Per-grade thresholds: a dict, or a JSON file of
    ``tools/slide/calibrate_thresholds.py``."""
    if thresholds is None or isinstance(thresholds, dict):
        return thresholds
    if not osp.isfile(str(thresholds)):
        raise FileNotFoundError(f'thresholds file {thresholds} not found '
                                '(write it with tools/slide/'
                                'calibrate_thresholds.py)')
    with open(thresholds) as f:
        return json.load(f)


class SlideScorer:
    """Cell and slide scores of a slide's merged detections.

    Args:
        settings (ScoreSettings): The scoring settings.
        classes (Sequence[str]): The detector's class names.
        device (torch.device): Where the MIL model and cell features run.
    """

    def __init__(self, settings: ScoreSettings, classes: Sequence[str],
                 device: torch.device) -> None:
        self.settings = settings
        self.classes = list(classes)
        self.device = device
        self.abnormal_classes = resolve_abnormal_classes(
            self.classes, settings.abnormal_classes)
        self._abnormal = np.isin(np.asarray(self.classes),
                                 np.asarray(self.abnormal_classes))
        self.aggregators = build_aggregators(settings.topk_mean_k)
        self.mil = build_mil(settings.mil_config, settings.mil_checkpoint,
                             settings.cell_feature_size, device)
        self.thresholds = load_thresholds(settings.thresholds)

    def cell_scores(self, dets: Dict[str, np.ndarray]) -> np.ndarray:
        """Abnormality score of each detection: its score when its class is
        abnormal, else 0. ``float32[N]``."""
        if len(dets['scores']) == 0:
            return np.zeros(0, np.float32)
        return np.where(self._abnormal[dets['labels']], dets['scores'],
                        0.).astype(np.float32)

    @torch.no_grad()
    def cell_features(self, model: torch.nn.Module, reader,
                      bboxes: np.ndarray,
                      context: float = 1.5) -> np.ndarray:
        """Detector-backbone features of cells: ``float32[K, C]``.

        Each cell is cropped at level 0 around its box (``context`` times
        its larger side), resized to ``cell_feature_size``, normalised by
        the detector's data preprocessor and embedded by its backbone (last
        stage, global average pooled).
        """
        import cv2
        size = self.settings.cell_feature_size
        if len(bboxes) == 0 or size <= 0:
            return np.zeros((0, 0), np.float32)
        cx = (bboxes[:, 0] + bboxes[:, 2]) / 2
        cy = (bboxes[:, 1] + bboxes[:, 3]) / 2
        side = np.maximum(bboxes[:, 2] - bboxes[:, 0],
                          bboxes[:, 3] - bboxes[:, 1]) * context
        side = np.maximum(np.ceil(side), 8).astype(np.int64)
        x0 = np.floor(cx - side / 2).astype(np.int64)
        y0 = np.floor(cy - side / 2).astype(np.int64)
        crops = [cv2.resize(reader.read_region(int(x), int(y), int(s),
                                               int(s), 0), (size, size),
                            interpolation=cv2.INTER_AREA)
                 for x, y, s in zip(x0, y0, side)]  # K <= top_k reads
        rgb = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
        norm = preprocessor_normalization(model.data_preprocessor)
        x = rgb if norm.to_rgb else \
            rgb.flip(1)  # the detector sees BGR unless it converts
        x = x.to(self.device)
        if norm.enabled:
            x = (x - norm.mean.view(1, -1, 1, 1)) / norm.std.view(1, -1, 1, 1)
        feats = model.backbone(x)
        return pool_backbone_output(feats).float().cpu().numpy()

    def slide_scores(self, scores: np.ndarray,
                     feats: Optional[np.ndarray]) -> Dict[str, float]:
        """Slide scores of the top-k cells from every aggregator."""
        s = torch.from_numpy(scores).float()[None]
        mask = torch.ones_like(s, dtype=torch.bool)
        out = {}
        with torch.no_grad():
            for name, agg in self.aggregators.items():
                out[name] = float(agg(s, mask))
            if self.mil is not None:
                out['attention_mil'] = float(self.mil.slide_score_from_bag(
                    s.to(self.device), mask.to(self.device),
                    torch.from_numpy(feats).float()[None].to(self.device)))
        return out

    def score(self, dets: Dict[str, np.ndarray], reader,
              model: torch.nn.Module) -> dict:
        """Everything the outputs need of a slide's merged detections.

        Returns:
            dict: ``cell_scores`` float32[N], ``top`` (the ``top_k`` cells
            by abnormality: ``bboxes, scores, labels``), ``top_scores``
            float32[K], ``feats`` float32[K, C] (C = 0 without cell
            features) and ``slide_scores`` {aggregator: score}.
        """
        cell_scores = self.cell_scores(dets)
        order = np.argsort(-cell_scores, kind='stable')[:self.settings.top_k]
        top = index_dets(dets, order)
        top_scores = cell_scores[order]
        feats = self.cell_features(model, reader, top['bboxes']) \
            if self.settings.cell_feature_size > 0 else np.zeros(
                (len(order), 0), np.float32)
        return dict(cell_scores=cell_scores, top=top, top_scores=top_scores,
                    feats=feats,
                    slide_scores=self.slide_scores(top_scores, feats))

    def slide_call(self, slide_scores: Dict[str, float]) -> Optional[dict]:
        """The report's ``slide_call`` (None without thresholds).

        Raises:
            ValueError: When the thresholds are for an aggregator this run
                has not computed.
        """
        if self.thresholds is None:
            return None
        from cervdet.evaluation.metrics.slide_screening_metric import call_grade
        agg = self.thresholds.get('aggregator', 'max')
        if agg not in slide_scores:
            raise ValueError(f'the thresholds are for aggregator {agg!r}, '
                             f'which this run has not computed '
                             f'({sorted(slide_scores)})')
        return dict(aggregator=agg,
                    grade=call_grade(slide_scores[agg], self.thresholds))


__all__ = ['NEGATIVE_CLASS_NAMES', 'resolve_abnormal_classes',
           'build_aggregators', 'build_mil', 'load_thresholds', 'SlideScorer']
