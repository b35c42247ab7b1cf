"""The DINO projection head (Caron et al., ICCV 2021, Sec. 3.1 and App. B):
a 3-layer MLP (hidden 2048, GELU) to a 256-d bottleneck, l2 normalisation,
then a weight-normalised linear layer without bias to ``K`` outputs.

With ``norm_last_layer=True`` (DINO's default) the weight-norm gain ``g`` is
fixed to 1, so every row of the last layer has unit norm (the output is a
cosine similarity to ``K`` prototypes), which stabilises training.
"""
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


def weight_norm_weight(weight_v: Tensor, weight_g: Tensor,
                       eps: float = 1e-12) -> Tensor:
    """Weight normalisation (Salimans & Kingma, 2016, Eq. 2) per output row.

    Args:
        weight_v (Tensor[K, D]): Direction ``v``.
        weight_g (Tensor[K, 1]): Gain ``g``.

    Returns:
        Tensor[K, D]: ``w_k = g_k v_k / ||v_k||``.
    """
    return weight_g * weight_v / weight_v.norm(dim=1, keepdim=True).clamp(
        min=eps)


class WeightNormLinear(nn.Module):
    """``Linear(in, out, bias=False)`` with weight normalisation; parameters
    ``weight_v`` Tensor[out, in] and ``weight_g`` Tensor[out, 1] (the names
    of ``torch.nn.utils.weight_norm``, as in the official DINO checkpoints).

    Args:
        in_features (int): Input dimension ``D``.
        out_features (int): Output dimension ``K``.
        fix_gain (bool): Keep ``g = 1`` (``requires_grad=False``).
    """

    def __init__(self, in_features: int, out_features: int,
                 fix_gain: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.trunc_normal_(self.weight_v, std=.02)
        self.weight_g = nn.Parameter(
            torch.ones(out_features, 1), requires_grad=not fix_gain)

    @property
    def weight(self) -> Tensor:
        """Tensor[K, D]: the effective weight."""
        return weight_norm_weight(self.weight_v, self.weight_g)

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[N, D] -> Tensor[N, K]."""
        return F.linear(x, self.weight)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, '
                f'fix_gain={not self.weight_g.requires_grad}')


@MODELS.register_module()
class DINOProjectionHead(BaseModule):
    """DINO projection head (mmpretrain ``MODELS``).

    ``x`` Tensor[N, C] (pooled backbone feature) -> MLP -> Tensor[N, Db]
    -> l2-normalise -> ``last_layer`` -> Tensor[N, K].

    The parameters of the last layer are ``last_layer.weight_v`` /
    ``last_layer.weight_g``; :class:`~cervdet.engine.hooks.
    DINOFreezeLastLayerHook` freezes them for the first epoch.

    Args:
        in_channels (int): Backbone feature dimension ``C`` (2048 for a
            ResNet-50, 384 for a ViT-S).
        out_channels (int): ``K``, the number of prototypes (65536 in DINO).
        hidden_channels (int): MLP width. Defaults to 2048.
        bottleneck_channels (int): ``Db``. Defaults to 256.
        num_layers (int): Number of MLP layers (>= 1). Defaults to 3.
        use_bn (bool): BatchNorm after the hidden layers (DINO: off for ViT;
            the official ResNet-50 run also used no BN). Defaults to False.
        norm_last_layer (bool): Fix the weight-norm gain to 1. Defaults to
            True.
        init_cfg (dict, optional): MMEngine init config; by default linear
            layers get DINO's truncated normal (std 0.02), biases 0.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 65536,
                 hidden_channels: int = 2048,
                 bottleneck_channels: int = 256,
                 num_layers: int = 3,
                 use_bn: bool = False,
                 norm_last_layer: bool = True,
                 init_cfg: Optional[Union[dict, list]] = dict(
                     type='TruncNormal', layer='Linear', std=.02,
                     bias=0.)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError('DINOProjectionHead: num_layers must be >= 1; '
                             f'got {num_layers}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm_last_layer = norm_last_layer
        if num_layers == 1:
            self.mlp = nn.Linear(in_channels, bottleneck_channels)
        else:
            layers = [nn.Linear(in_channels, hidden_channels)]
            for i in range(num_layers - 1):
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_channels))
                layers.append(nn.GELU())
                last = i == num_layers - 2
                layers.append(
                    nn.Linear(hidden_channels,
                              bottleneck_channels if last else hidden_channels))
            self.mlp = nn.Sequential(*layers)
        self.last_layer = WeightNormLinear(
            bottleneck_channels, out_channels, fix_gain=norm_last_layer)

    def forward(self, x: Union[Tensor, tuple]) -> Tensor:
        """Project pooled features.

        Args:
            x (Tensor[N, C] | tuple): Pooled features (the last element of a
                tuple from a neck is used).

        Returns:
            Tensor[N, K]: Logits over the ``K`` prototypes.
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError('DINOProjectionHead expects pooled features '
                             f'Tensor[N, {self.in_channels}]; got shape '
                             f'{tuple(x.shape)} (check in_channels against '
                             'the backbone output and the neck)')
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


__all__ = ['DINOProjectionHead', 'WeightNormLinear', 'weight_norm_weight']
