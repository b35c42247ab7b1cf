"""RoI features fused over several feature levels of different widths.

The MIL detector of LD-WSCCD (Yin et al., IEEE Access 2024, Sec. III.D: "the
data is inputted into the base network SSD, where multi-scale features are
fused through SSD convolutions ... feature vectors for detection and
classification flows are generated via two fully connected layers") reads
every region from all SSD levels, not from one.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from torch import Tensor

FUSIONS = ('sum', 'concat')


@MODELS.register_module()
class MultiScaleFusionRoIExtractor(BaseRoIExtractor):
    """Pool every RoI from every level and fuse the levels.

    Level ``l`` (``Tensor[B, in_channels[l], H_l, W_l]``, stride
    ``featmap_strides[l]``) goes through its own 1x1 conv to
    ``level_channels`` (a lateral conv, as in FPN: SSD's levels have 512,
    1024, 512, 256, ... channels); every RoI is pooled (``roi_layer``, e.g.
    RoIAlign 7x7) from every level; the ``L`` pooled maps are fused by
    ``'sum'`` (``Tensor[N, level_channels, s, s]``) or ``'concat'``
    (``Tensor[N, L * level_channels, s, s]``). The loop runs over the
    levels only (vectorised over RoIs).

    Args:
        roi_layer (dict): RoI layer config, e.g. ``dict(type='RoIAlign',
            output_size=7, sampling_ratio=0)``.
        in_channels (Sequence[int]): Channels of every level.
        level_channels (int): Channels after the lateral convs.
        featmap_strides (Sequence[int]): Stride of every level.
        fusion (str): ``'sum'`` or ``'concat'``. Defaults to ``'sum'``.
        init_cfg (dict | list[dict], optional): Initialisation config;
            ``None``: Xavier (uniform) for the lateral convs.
    """

    def __init__(self,
                 roi_layer: ConfigType,
                 in_channels: Sequence[int],
                 level_channels: int,
                 featmap_strides: Sequence[int],
                 fusion: str = 'sum',
                 init_cfg: OptMultiConfig = None) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f'MultiScaleFusionRoIExtractor: fusion must be '
                             f'one of {FUSIONS}, got {fusion!r}')
        if len(in_channels) != len(featmap_strides):
            raise ValueError(
                'MultiScaleFusionRoIExtractor: one in_channels entry per '
                f'level; got {len(in_channels)} channels and '
                f'{len(featmap_strides)} strides')
        if init_cfg is None:
            init_cfg = dict(type='Xavier', distribution='uniform',
                            layer='Conv2d')
        num_levels = len(featmap_strides)
        out_channels = level_channels * (num_levels
                                         if fusion == 'concat' else 1)
        super().__init__(
            roi_layer=roi_layer,
            out_channels=out_channels,
            featmap_strides=list(featmap_strides),
            init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.level_channels = level_channels
        self.fusion = fusion
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, level_channels, 1) for c in in_channels)

    def forward(self,
                feats: Tuple[Tensor, ...],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """Fused RoI features.

        Args:
            feats (tuple[Tensor]): ``L`` maps ``Tensor[B, C_l, H_l, W_l]``.
            rois (Tensor[N, 5]): ``(batch_ind, x1, y1, x2, y2)`` in input
                pixels.
            roi_scale_factor (float, optional): Scale the RoIs about their
                centres first.

        Returns:
            Tensor: ``Tensor[N, level_channels, s, s]`` (sum) or
            ``Tensor[N, L * level_channels, s, s]`` (concat).
        """
        if len(feats) != self.num_inputs:
            raise ValueError(
                f'MultiScaleFusionRoIExtractor: {len(feats)} feature levels '
                f'given, {self.num_inputs} configured (featmap_strides)')
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        pooled: List[Tensor] = []
        for feat, conv, layer in zip(feats, self.lateral_convs,
                                     self.roi_layers):
            lateral = conv(feat)
            if rois.size(0) == 0:
                size = layer.output_size
                size = tuple(size) if isinstance(size, (tuple, list)) \
                    else (size, size)
                pooled.append(lateral.new_zeros(0, self.level_channels,
                                                *size) + lateral.sum() * 0.)
            else:
                pooled.append(layer(lateral, rois))
        if self.fusion == 'concat':
            return torch.cat(pooled, dim=1)
        out = pooled[0]
        for p in pooled[1:]:
            out = out + p
        return out


__all__ = ['MultiScaleFusionRoIExtractor', 'FUSIONS']
