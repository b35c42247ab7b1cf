"""Projection head of Chai et al., "Deep semi-supervised metric learning with
dual alignment for cervical cancer cell detection" (ISBI 2022): maps every
proposal's RoI feature into the metric space of the dual alignment losses.
"""
from typing import Optional, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS


@MODELS.register_module()
class MetricProjectionHead(BaseModule):
    """Two fully connected layers with a ReLU, ``x = W2 relu(W1 H)`` (issue
    text).

    Args:
        in_channels (int): Size of a flattened RoI feature ``H`` (e.g.
            ``256 * 7 * 7`` for mmdet's RoI extractor output, or 1024 for the
            shared-FC output of a bbox head).
        hidden_channels (int): Output size of ``W1``. Defaults to 1024.
        out_channels (int): Dimension ``D`` of the metric space. Defaults to
            128.
        init_cfg (dict | list[dict], optional): MMEngine initialisation;
            defaults to PyTorch's ``nn.Linear`` initialisation.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = 1024,
                 out_channels: int = 128,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = int(in_channels)
        self.hidden_channels = int(hidden_channels)
        self.out_channels = int(out_channels)
        self.fc1 = nn.Linear(self.in_channels, self.hidden_channels)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(self.hidden_channels, self.out_channels)

    def forward(self, feats: Tensor) -> Tensor:
        """Embed proposals.

        Args:
            feats (Tensor[N, C, h, w] | Tensor[N, C]): RoI features; flattened
                to ``Tensor[N, C*h*w]``, which must equal ``in_channels``.

        Returns:
            Tensor[N, out_channels]: Embeddings ``x`` (``N = 0`` allowed).
        """
        flat = feats.flatten(1)
        if flat.shape[1] != self.in_channels:
            raise ValueError(
                f'MetricProjectionHead expects {self.in_channels} features '
                f'per proposal after flattening; got {tuple(feats.shape)}')
        return self.fc2(self.relu(self.fc1(flat)))


__all__ = ['MetricProjectionHead']
