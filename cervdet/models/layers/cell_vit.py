"""Local branch of Shi et al. (ISBI 2022): a hybrid ViT on every cell's CNN
feature map.

The stage-4 ResNet-50 map of a cell crop (``Tensor[C=2048, 7, 7]`` for a
224 px crop) is cut into 1x1 patches, i.e. every spatial position is a token
(the "hybrid" ViT of Dosovitskiy et al., ICLR 2021, Sec. 3.1), embedded to
``D`` by a linear layer, a class token is prepended, learned position
embeddings (``h * w + 1``) are added and ``depth`` transformer encoder layers
(mmpretrain's :class:`TransformerEncoderLayer`, pre-norm) run; the final
LayerNorm of the class token is the cell's local feature ``y_i``::

    z_0 = [x_cls; x_1 E; ...; x_hw E] + E_pos      Dosovitskiy Eq. (1)
    z_l = encoder_layer(z_{l-1}),  l = 1..depth     Eqs. (2)-(3)
    y   = LN(z_depth^0)                             Eq. (4)

The paper gives ``D = 768`` but (in what we could read) not the depth: we
default to ViT-Base's 12 layers / 12 heads (the hybrid R50+ViT-B of
Dosovitskiy et al.); CPU configs use far smaller values. Maps of another
size than ``map_size`` get bicubically resized position embeddings.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> vit = MODELS.build(dict(type='CellViT', in_channels=2048,
    ...                         embed_dims=768, depth=2, num_heads=12))
    >>> y = vit(torch.randn(5, 2048, 7, 7))      # [5, 768]
"""
from typing import Sequence, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS


@MODELS.register_module()
class CellViT(nn.Module):
    """Hybrid ViT over 1x1 patches of a cell's CNN feature map.

    Args:
        in_channels (int): Channels ``C`` of the maps. Defaults to 2048.
        embed_dims (int): Token width ``D``. Defaults to 768 (paper).
        depth (int): Number of encoder layers. Defaults to 12 (our choice,
            ViT-Base; see the module docstring).
        num_heads (int): Attention heads. Defaults to 12.
        mlp_ratio (float): FFN width / ``D``. Defaults to 4.
        map_size (int | tuple[int, int]): Expected map size ``(h, w)`` the
            position embeddings are learned for. Defaults to 7 (224 px crops
            through ResNet-50).
        drop_rate (float): Dropout after embeddings and in the FFN.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic depth (linearly increasing).

    Attributes:
        out_channels (int): ``embed_dims``.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 embed_dims: int = 768,
                 depth: int = 12,
                 num_heads: int = 12,
                 mlp_ratio: float = 4.,
                 map_size: Union[int, Sequence[int]] = 7,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        if isinstance(map_size, int):
            map_size = (map_size, map_size)
        self.map_size = tuple(int(s) for s in map_size)
        self.in_channels = int(in_channels)
        self.embed_dims = self.out_channels = int(embed_dims)
        # 1x1 patch embedding E (a linear layer on every position)
        self.patch_embed = nn.Linear(self.in_channels, self.embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        num_tokens = self.map_size[0] * self.map_size[1] + 1
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_tokens, self.embed_dims))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.drop_after_pos = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, max(depth, 1)).tolist()
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dims=self.embed_dims,
                num_heads=num_heads,
                feedforward_channels=int(mlp_ratio * self.embed_dims),
                drop_rate=drop_rate,
                attn_drop_rate=attn_drop_rate,
                drop_path_rate=dpr[i]) for i in range(depth)
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)

    def init_weights(self) -> None:
        """Initialise the encoder layers (mmpretrain's ViT scheme; called
        by ``BaseModule.init_weights`` of the parent model)."""
        for layer in self.layers:
            layer.init_weights()

    def forward(self, maps: Tensor) -> Tensor:
        """Local feature of every cell.

        Args:
            maps (Tensor[M, C, h, w]): Feature maps of the (valid) cells.

        Returns:
            Tensor[M, D]: Class-token embedding ``y_i`` of every cell.
        """
        if maps.dim() != 4 or maps.shape[1] != self.in_channels:
            raise ValueError(
                f'CellViT expects maps Tensor[M, {self.in_channels}, h, w]; '
                f'got shape {tuple(maps.shape)} (set in_channels to the '
                'channels of the cell encoder\'s stage-4 map)')
        m, _, h, w = maps.shape
        tokens = self.patch_embed(maps.flatten(2).transpose(1, 2))  # [M,hw,D]
        tokens = torch.cat([self.cls_token.expand(m, -1, -1), tokens], dim=1)
        pos = resize_pos_embed(
            self.pos_embed, self.map_size, (h, w), num_extra_tokens=1)
        z = self.drop_after_pos(tokens + pos)  # Dosovitskiy Eq. (1)
        for layer in self.layers:
            z = layer(z)  # Eqs. (2)-(3)
        return self.norm(z[:, 0])  # Eq. (4)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'embed_dims={self.embed_dims}, depth={len(self.layers)}, '
                f'map_size={self.map_size}')


__all__ = ['CellViT']
