"""The interface of the global branches of the ROI classifier
(:class:`~cervdet.models.classifiers.GlobalLocalROIClassifier`): a padded
batch of cell bags in, one feature per ROI (and an attention over its cells)
out::

    h, attention = pooling(feats, mask)   # Tensor[B, D], Tensor[B, N] | None

:class:`~cervdet.models.layers.AttBLSTM`,
:class:`~cervdet.models.layers.GatedAttentionMIL` and
:class:`~cervdet.models.layers.RNNAggregator` subclass
:class:`BaseCellPooling`: its :meth:`~BaseCellPooling.forward` checks the
bags (:func:`check_bag_inputs`) and calls their
:meth:`~BaseCellPooling.pool`.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor


def check_bag_inputs(feats: Tensor, mask: Tensor, name: str = 'feats'):
    """Raise a clear ``ValueError`` for malformed bag inputs.

    Args:
        feats (Tensor[B, N, C]): Padded cell features.
        mask (Tensor[B, N]): ``True`` for valid cells.
        name (str): Name of ``feats`` in the error message.
    """
    if feats.dim() != 3:
        raise ValueError(f'{name} must be Tensor[B, N, C]; got shape '
                         f'{tuple(feats.shape)}')
    if mask.shape != feats.shape[:2]:
        raise ValueError(f'mask must be Tensor[B, N] = '
                         f'{tuple(feats.shape[:2])} like {name}; got shape '
                         f'{tuple(mask.shape)}')
    if feats.shape[0] and not bool(mask.any(dim=1).all()):
        empty = torch.nonzero(~mask.any(dim=1)).flatten().tolist()
        raise ValueError(
            f'ROIs {empty} of the batch have no valid cell (mask all False): '
            'every ROI needs at least one cell; drop empty ROIs in the '
            "dataset (option empty_roi='skip')")


class BaseCellPooling(nn.Module, metaclass=ABCMeta):
    """Base class of the ROI global branches: cell bags -> one feature per
    ROI.

    Attributes:
        out_channels (int): Width ``D`` of the ROI feature (set by the
            subclass).
        has_attention (bool): Whether :meth:`forward` returns an attention
            over the cells (False: None).
    """

    has_attention: bool = True

    def forward(self, feats: Tensor,
                mask: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Pool the cells of every ROI.

        Args:
            feats (Tensor[B, N, C]): Padded cell features (any values on
                padding).
            mask (Tensor[B, N]): bool, ``True`` for valid cells; at least
                one per ROI.

        Returns:
            tuple: ``h`` Tensor[B, out_channels] and ``attention``
            Tensor[B, N] (sums to 1 over the valid cells, 0 on padding), or
            None without attention (``has_attention`` False).
        """
        check_bag_inputs(feats, mask)
        return self.pool(feats, mask.bool())

    @abstractmethod
    def pool(self, feats: Tensor,
             mask: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """The branch's own pooling, on checked bags.

        Args:
            feats (Tensor[B, N, C]): Padded cell features.
            mask (Tensor[B, N]): bool, ``True`` for valid cells (>= 1 per
                ROI).

        Returns:
            tuple: ``h`` Tensor[B, out_channels] and ``attention``
            Tensor[B, N] or None.
        """


__all__ = ['BaseCellPooling', 'check_bag_inputs']
