"""What the bag classifiers of cervdet share
(:class:`~cervdet.models.classifiers.GlobalLocalROIClassifier`: cells of an
ROI; :class:`~cervdet.models.classifiers.SlideMILClassifier`: cells of a
slide): their parts come from mmpretrain's ``MODELS`` and their
:meth:`~BaseBagClassifier.forward` dispatches mmengine's three modes.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Union

import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor


def build_mmpretrain_module(cfg: Union[dict, nn.Module]) -> nn.Module:
    """Build from mmpretrain's MODELS whatever the current default scope (a
    module is returned as it is)."""
    if isinstance(cfg, nn.Module):
        return cfg
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


class BaseBagClassifier(BaseModel):
    """A classifier of padded cell bags (``inputs`` is the dict of its data
    preprocessor) with mmengine's three modes.

    Subclasses implement :meth:`_forward_tensor`, :meth:`loss` and
    :meth:`predict`.
    """

    def forward(self,
                inputs: dict,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'tensor'`` -> :meth:`_forward_tensor` (the raw outputs);
        ``'loss'`` -> dict of losses (:meth:`loss`); ``'predict'`` -> list
        of ``DataSample`` (:meth:`predict`)."""
        if mode == 'tensor':
            return self._forward_tensor(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; use tensor, loss or '
                           'predict')

    @abstractmethod
    def _forward_tensor(self, inputs: dict) -> Tensor:
        """The raw outputs of ``mode='tensor'`` (logits or scores)."""

    @abstractmethod
    def loss(self, inputs: dict,
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """The losses of a batch."""

    @abstractmethod
    def predict(self,
                inputs: dict,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """One ``DataSample`` with the predictions per bag."""


__all__ = ['BaseBagClassifier', 'build_mmpretrain_module']
