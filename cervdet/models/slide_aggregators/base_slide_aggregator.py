"""The interface every slide aggregator follows.

A slide aggregator turns a padded batch of cell bags into one output per
slide. :class:`~cervdet.models.classifiers.SlideMILClassifier` (training,
``tools/test.py``) and :class:`~cervdet.apis.SlideInferencer` (the slide
scores of ``report.json``) call it the same way::

    out = agg(scores, mask, feats)                         # Tensor[B] | [B, G]
    out, att = agg(scores, mask, feats, return_attention=True)
    prob = agg.predict_proba(scores, mask, feats)          # Tensor[B] | [B, G]

Inputs (checked by :func:`~cervdet.models.slide_aggregators.check_slide_bag`):

- ``scores`` Tensor[B, K]: cell abnormality scores, in any order; padding
  may hold any value.
- ``mask`` Tensor[B, K] bool: True for the valid cells of each bag; a row
  may be all False (a slide without any detected cell, a clean negative).
- ``feats`` Tensor[B, K, C], optional: cell features (the detector's
  backbone embedding of each cell); aggregators that do not read them
  accept None.

Outputs:

- :meth:`forward` gives Tensor[B] for a binary slide output
  (``num_classes == 1``) or Tensor[B, G] for ``G`` grades; a rule
  (``is_learned = False``) gives a score in the range of the cell scores,
  a learned aggregator gives logits. An empty bag gives a finite output
  (0 for the rules, the head's bias for a learned model).
- With ``return_attention=True`` also the weight of every cell,
  Tensor[B, K]: 0 on padding and on empty bags.
- :meth:`predict_proba` maps :meth:`forward` to probabilities: the
  identity for a rule, sigmoid (``num_classes == 1``) or softmax over the
  grades for a learned aggregator.

Class attributes read by the callers:

- ``is_learned`` (bool): whether :meth:`forward` gives logits and the
  aggregator can be trained (``SlideMILClassifier.loss`` refuses rules);
- ``num_classes`` (int): 1 (binary) or the number of grades ``G``.

A new aggregator subclasses :class:`BaseSlideAggregator`, implements
:meth:`aggregate` (the bag is already checked by :meth:`forward`, which calls
it), sets the two attributes and registers in ``mmpretrain.registry.MODELS``
(the folder's scope).
"""
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from .topk_cells import check_slide_bag


class BaseSlideAggregator(nn.Module, metaclass=ABCMeta):
    """Base class of slide aggregators: cell bags -> one output per slide.

    See the module docstring for the inputs, outputs and attributes.

    Attributes:
        is_learned (bool): True when :meth:`forward` gives logits (a
            trainable model), False for a fixed rule.
        num_classes (int): 1 (binary slide output) or the number of grades.
    """

    is_learned: bool = False
    num_classes: int = 1

    def forward(self,
                scores: Tensor,
                mask: Tensor,
                feats: Optional[Tensor] = None,
                return_attention: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Aggregate padded bags: check them (:func:`check_slide_bag`), then
        :meth:`aggregate`.

        Args:
            scores (Tensor[B, K]): Cell scores (any order).
            mask (Tensor[B, K]): bool, True for valid cells (rows may be all
                False).
            feats (Tensor[B, K, C], optional): Cell features.
            return_attention (bool): Also return the weight of every cell.

        Returns:
            Tensor[B] or Tensor[B, G] (and ``attention`` Tensor[B, K], 0 on
            padding and on empty bags).
        """
        check_slide_bag(scores, mask, feats)
        out, att = self.aggregate(scores, mask.bool(), feats,
                                  return_attention)
        return (out, att) if return_attention else out

    @abstractmethod
    def aggregate(self, scores: Tensor, mask: Tensor, feats: Optional[Tensor],
                  return_attention: bool
                  ) -> Tuple[Tensor, Optional[Tensor]]:
        """The aggregator's own rule, on a checked bag.

        Args:
            scores (Tensor[B, K]): Cell scores (any order).
            mask (Tensor[B, K]): bool, True for valid cells.
            feats (Tensor[B, K, C], optional): Cell features.
            return_attention (bool): Whether the attention is wanted (an
                aggregator may skip computing it otherwise).

        Returns:
            tuple: ``out`` Tensor[B] or Tensor[B, G] and ``attention``
            Tensor[B, K] (may be None when ``return_attention`` is False).
        """

    def predict_proba(self, scores: Tensor, mask: Tensor,
                      feats: Optional[Tensor] = None) -> Tensor:
        """Slide probabilities: Tensor[B] (``num_classes == 1``) or
        Tensor[B, G].

        A rule's :meth:`forward` is already a score (identity); a learned
        aggregator's logits go through sigmoid (binary) or softmax (grades).
        """
        out = self.forward(scores, mask, feats)
        if not self.is_learned:
            return out
        if self.num_classes == 1:
            return torch.sigmoid(out)
        return torch.softmax(out, dim=1)


__all__ = ['BaseSlideAggregator']
