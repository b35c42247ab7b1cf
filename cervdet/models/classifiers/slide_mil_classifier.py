"""Slide-level call from the top-k cells of a slide (whole-slide
screening): a slide is a bag of its detected cells (``cells_topk.npz`` of
``tools/slide_infer.py``, read by :class:`~cervdet.datasets.SlideBagDataset`)
and a slide aggregator (``AttentionMILAggregator``, ``MaxScoreAggregator``,
``TopKMeanAggregator``) turns it into a slide score.

:class:`~.slide_bag_data_preprocessor.SlideBagDataPreprocessor` keeps the
``top_k`` highest-scoring cells of every bag and pads the batch (``scores``,
``mask``, ``feats``, ``bboxes``, ``index``; see its module).

:class:`SlideMILClassifier` trains a learned aggregator with ``loss_slide``:
binary cross-entropy on ``is_positive`` for ``num_classes=1``, cross-entropy
on the grade (``gt_label``) for ``G >= 2``. ``predict`` sets per slide

* ``pred_score`` Tensor[G] (``[1 - p, p]`` for binary / score aggregators),
* ``pred_label`` (argmax; for binary 1 = positive),
* ``slide_score`` (float, P(positive); ``1 - P(negative grade)`` for grades),
* ``cell_attention`` Tensor[n], ``cell_index`` Tensor[n] (row in the bag
  file), ``cell_scores`` Tensor[n] and ``cell_bboxes`` Tensor[n, 4] for the
  ``n`` kept cells.

Usage (config)::

    model = dict(
        type='SlideMILClassifier',
        data_preprocessor=dict(type='SlideBagDataPreprocessor', top_k=32),
        aggregator=dict(type='AttentionMILAggregator', in_channels=256,
                        hidden=128, num_classes=1),
        classes=('negative', 'positive'))
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..slide_aggregators.topk_cells import topk_cells
from .base_bag_classifier import BaseBagClassifier
from .base_bag_classifier import build_mmpretrain_module as _build
from .slide_bag_data_preprocessor import SlideBagDataPreprocessor  # noqa
from .slide_bag_data_preprocessor import pad_slide_bags


def _build_preprocessor(cfg) -> nn.Module:
    if cfg is None:
        return SlideBagDataPreprocessor()
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    kind = cfg.pop('type', 'SlideBagDataPreprocessor')
    if kind in ('SlideBagDataPreprocessor', SlideBagDataPreprocessor):
        return SlideBagDataPreprocessor(**cfg)
    return _build(dict(type=kind, **cfg))


@MODELS.register_module()
class SlideMILClassifier(BaseBagClassifier):
    """Slide classifier over the top-k cells of a slide.

    Args:
        aggregator (dict): Slide aggregator config
            (``AttentionMILAggregator`` to train; ``MaxScoreAggregator`` /
            ``TopKMeanAggregator`` for evaluation only: they have nothing to
            learn). Its ``num_classes`` (1 = binary, G = grades) sets the
            output.
        classes (Sequence[str], optional): Output class names: the grades
            for ``G >= 2``; ``('negative', 'positive')`` for binary.
        negative_index (int): Index of the negative grade (NILM) in the
            grade logits. Defaults to 0.
        pos_weight (float, optional): Weight of positive slides in the
            binary loss (BCE ``pos_weight``).
        class_weight (Sequence[float], optional): Per-grade weights of the
            cross-entropy.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='SlideBagDataPreprocessor')`` (all cells).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 aggregator: dict,
                 classes: Optional[Sequence[str]] = None,
                 negative_index: int = 0,
                 pos_weight: Optional[float] = None,
                 class_weight: Optional[Sequence[float]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg,
                         data_preprocessor=_build_preprocessor(
                             data_preprocessor))
        self.aggregator = _build(aggregator)
        self.num_classes = int(getattr(self.aggregator, 'num_classes', 1))
        self.is_learned = bool(getattr(self.aggregator, 'is_learned', True))
        n_out = max(self.num_classes, 2)
        if classes is None:
            classes = ('negative', 'positive') if self.num_classes == 1 \
                else tuple(f'grade_{i}' for i in range(n_out))
        self.classes = tuple(classes)
        if len(self.classes) != n_out:
            raise ValueError(
                f'SlideMILClassifier: {len(self.classes)} classes '
                f'{list(self.classes)} for an aggregator with num_classes='
                f'{self.num_classes} ({n_out} outputs): set '
                'model.aggregator.num_classes to the number of grades, or 1 '
                'with classes=("negative", "positive")')
        if not 0 <= negative_index < n_out:
            raise ValueError(f'negative_index {negative_index} outside '
                             f'[0, {n_out})')
        self.negative_index = int(negative_index)
        self.pos_weight = pos_weight
        if class_weight is not None and len(class_weight) != self.num_classes:
            raise ValueError(f'class_weight needs {self.num_classes} values; '
                             f'got {list(class_weight)}')
        self.register_buffer(
            'class_weight',
            torch.tensor(class_weight, dtype=torch.float)
            if class_weight is not None else None, persistent=False)

    # ------------------------------------------------------------------
    def _aggregate(self, inputs: dict):
        """``(out, attention)``: logits Tensor[B] / Tensor[B, G] (learned)
        or slide scores Tensor[B] (score aggregators), attention
        Tensor[B, K]."""
        if not isinstance(inputs, dict) or 'scores' not in inputs \
                or 'mask' not in inputs:
            raise ValueError('SlideMILClassifier expects inputs=dict(scores, '
                             'mask, feats) from SlideBagDataPreprocessor; '
                             f'got {type(inputs).__name__}')
        return self.aggregator(inputs['scores'], inputs['mask'],
                               inputs.get('feats'), return_attention=True)

    def _forward_tensor(self, inputs: dict) -> Tensor:
        """``mode='tensor'``: logits Tensor[B] / Tensor[B, G] (learned) or
        slide scores Tensor[B] (score aggregators)."""
        return self._aggregate(inputs)[0]

    def _targets(self, data_samples: List[DataSample], device) -> Tensor:
        if not data_samples:
            raise ValueError('loss mode needs data samples with gt_label')
        if self.num_classes == 1:
            pos = []
            for s in data_samples:
                if 'is_positive' in s:
                    pos.append(float(bool(s.is_positive)))
                elif 'gt_label' in s:
                    pos.append(float(int(s.gt_label.view(-1)[0])
                                     != self.negative_index))
                else:
                    raise ValueError(f'slide {s.get("slide", "?")} has no '
                                     'label (is_positive / gt_label)')
            return torch.tensor(pos, device=device)
        if any('gt_label' not in s for s in data_samples):
            raise ValueError('grade training needs gt_label (the grade '
                             'index) in every data sample')
        labels = torch.cat([s.gt_label.view(-1)[:1] for s in data_samples])
        labels = labels.long().to(device)
        if labels.max() >= self.num_classes or labels.min() < 0:
            raise ValueError(f'gt_label {labels.tolist()} outside the '
                             f'{self.num_classes} grades of the aggregator: '
                             'the dataset classes and model.aggregator.'
                             'num_classes must agree')
        return labels

    def loss(self, inputs: dict,
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """``loss_slide``: BCE (binary) or cross-entropy (grades)."""
        if not self.is_learned:
            raise ValueError(
                f'{type(self.aggregator).__name__} has nothing to learn: use '
                'it with tools/test.py / tools/slide/eval_slides.py, or train '
                "an aggregator=dict(type='AttentionMILAggregator', ...)")
        logits, _ = self._aggregate(inputs)
        target = self._targets(data_samples, logits.device)
        if self.num_classes == 1:
            pw = None if self.pos_weight is None else \
                logits.new_tensor(float(self.pos_weight))
            loss = F.binary_cross_entropy_with_logits(logits, target,
                                                      pos_weight=pw)
        else:
            loss = F.cross_entropy(logits, target, weight=self.class_weight)
        return dict(loss_slide=loss)

    @torch.no_grad()
    def slide_score_from_bag(self, scores: Tensor, mask: Tensor,
                             feats: Optional[Tensor] = None) -> Tensor:
        """P(positive) of already padded bags (for the slide inferencer).

        Args:
            scores (Tensor[B, K]): Cell scores (any order).
            mask (Tensor[B, K]): bool, True for valid cells.
            feats (Tensor[B, K, C], optional): Cell features.

        Returns:
            Tensor[B]: The ``slide_score`` of :meth:`predict` (the
            preprocessor's ``top_k`` is applied first).
        """
        top_k = getattr(self.data_preprocessor, 'top_k', None)
        if top_k is not None and scores.shape[1] > top_k:
            _, index, mask = topk_cells(scores, top_k, mask)
            scores = scores.gather(1, index)
            if feats is not None:
                feats = feats.gather(
                    1, index[..., None].expand(-1, -1, feats.shape[2]))
        inputs = dict(scores=scores.masked_fill(~mask.bool(), 0.),
                      mask=mask.bool(), feats=feats)
        out, _ = self._aggregate(inputs)
        if self.num_classes == 1:
            return torch.sigmoid(out) if self.is_learned else out.clamp(0., 1.)
        probs = torch.softmax(out, dim=1) if self.is_learned else out
        return 1. - probs[:, self.negative_index]

    @torch.no_grad()
    def predict(self,
                inputs: dict,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Per-slide predictions (see the module docstring)."""
        out, attention = self._aggregate(inputs)
        mask = inputs['mask'].bool()
        if self.num_classes == 1:
            p = torch.sigmoid(out) if self.is_learned else out.clamp(0., 1.)
            probs = torch.stack([1. - p, p], dim=1)
            slide = p
        else:
            probs = torch.softmax(out, dim=1) if self.is_learned else out
            slide = 1. - probs[:, self.negative_index]
        if data_samples is None:
            data_samples = [DataSample() for _ in range(mask.shape[0])]
        index = inputs.get('index')
        # one DataSample per slide: a loop over the batch is unavoidable
        for i, sample in enumerate(data_samples):
            valid = mask[i]
            sample.set_pred_score(probs[i]).set_pred_label(probs[i].argmax())
            sample.set_field(float(slide[i]), 'slide_score',
                             field_type='metainfo')
            sample.set_field(attention[i][valid], 'cell_attention')
            sample.set_field(inputs['scores'][i][valid], 'cell_scores')
            if index is not None:
                sample.set_field(index[i][valid], 'cell_index')
            if 'bboxes' in inputs:
                sample.set_field(inputs['bboxes'][i][valid], 'cell_bboxes')
        return data_samples


__all__ = ['SlideMILClassifier', 'SlideBagDataPreprocessor',
           'pad_slide_bags']
