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

The paper (Sec. 2.3-2.4) uses "the hybrid architecture of ViT pre-trained
on the ImageNet-21k" with ``D = 768``: that is ViT-Base (the hybrid
R50+ViT-B/16 of Dosovitskiy et al., Table 1: 12 layers, 12 heads, MLP 3072,
LayerNorm eps 1e-6), the defaults here; CPU configs use far smaller values.
Maps of another size than ``map_size`` get bicubically resized position
embeddings.

ImageNet-21k weights (``init_cfg=dict(type='Pretrained', checkpoint=...,
prefix=...)``): the transformer (class token, position embeddings, the
``depth`` encoder layers and the final LayerNorm) is loaded from a ViT-B
checkpoint in mmpretrain's naming (``layers.0.ln1``, ..., final ``ln1``;
e.g. mmpretrain's ``vit-base-p16_3rdparty_pt-64xb64_in1k-224`` file, the
converted Google ImageNet-21k ViT-B/16, ``prefix='backbone.'``) or timm's
(``blocks.0.norm1``, ..., ``norm``; e.g. timm's
``vit_base_r50_s16_224.orig_in21k``, the hybrid itself). The 1x1 patch
embedding ``E`` is not loaded: the paper feeds ResNet-50's stage-4 map
(``d_c = 2048`` channels), not the hybrid's stage-3 map (1024) nor 16x16
RGB patches, so no checkpoint has its shape; it keeps its random
initialisation. The 14x14 (+1) position embeddings are resized bicubically
to ``map_size``. :func:`load_vit_weights` does the mapping and reports what
was loaded.

Usage::

    >>> from mmpretrain.registry import MODELS
    >>> import cervdet  # noqa: F401
    >>> import torch
    >>> vit = MODELS.build(dict(type='CellViT', in_channels=2048,
    ...                         embed_dims=768, depth=2, num_heads=12))
    >>> y = vit(torch.randn(5, 2048, 7, 7))      # [5, 768]
"""
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from torch import Tensor

#: mmpretrain's ImageNet-21k pre-trained ViT-B/16 (Google's weights,
#: converted; the ``pretrained`` of mmpretrain's
#: ``configs/vision_transformer/vit-base-p16_4xb544-ipu_in1k.py``); keys
#: under ``backbone.``.
VIT_B16_IN21K_URL = (
    'https://download.openmmlab.com/mmclassification/v0/vit/pretrain/'
    'vit-base-p16_3rdparty_pt-64xb64_in1k-224_20210928-02284250.pth')

# timm's ViT names -> ours (= mmpretrain's TransformerEncoderLayer names)
_TIMM_TO_OURS = (
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
)


def convert_vit_state_dict(state_dict: Dict[str, Tensor],
                           prefix: str = '') -> Dict[str, Tensor]:
    """Keys of a ViT checkpoint (mmpretrain or timm naming) -> CellViT's.

    Only the transformer is kept: ``cls_token``, ``pos_embed`` (unresized),
    ``layers.*`` and the final ``norm.*``; the patch embedding, a hybrid's
    ResNet stem and any head are dropped.

    Args:
        state_dict (dict[str, Tensor]): The checkpoint's ``state_dict``.
        prefix (str): Key prefix of the ViT in it (``'backbone.'`` for an
            mmpretrain classifier file); keys without it are dropped.

    Returns:
        dict[str, Tensor]: Tensors under CellViT's names.
    """
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        if key in ('cls_token', 'pos_embed'):
            out[key] = value
            continue
        if key.startswith('blocks.'):  # timm
            for pattern, repl in _TIMM_TO_OURS:
                if re.match(pattern, key):
                    out[re.sub(pattern, repl, key)] = value
                    break
            continue
        if key.startswith('layers.'):  # mmpretrain
            out[key] = value
        elif key.startswith('ln1.') or key.startswith('norm.'):
            out['norm.' + key.split('.', 1)[1]] = value  # final LayerNorm
    return out


@MODELS.register_module()
class CellViT(BaseModule):
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
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6 (ViT's).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=
            <file or URL>, prefix='backbone.')`` loads ImageNet weights into
            the transformer (see the module docstring); None: random
            (mmpretrain's ViT scheme).

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
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
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
                drop_path_rate=dpr[i],
                norm_cfg=dict(type='LN', eps=norm_eps)) for i in range(depth)
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=norm_eps)

    def init_weights(self) -> None:
        """Random init (mmpretrain's ViT scheme), then the ``Pretrained``
        ``init_cfg``'s transformer weights if there is one (called by
        ``BaseModule.init_weights`` of the parent model)."""
        for layer in self.layers:
            layer.init_weights()
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_vit_weights(self, cfg['checkpoint'], cfg.get('prefix', ''))
        elif cfg is not None:
            raise ValueError(
                "CellViT.init_cfg must be None or dict(type='Pretrained', "
                f"checkpoint=..., prefix=...); got {cfg!r}")
        self._is_init = True

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


def load_vit_weights(vit: CellViT, checkpoint: str,
                     prefix: str = '') -> Tuple[List[str], List[str]]:
    """Load a ViT checkpoint's transformer into ``vit``.

    Args:
        vit (CellViT): The local branch.
        checkpoint (str): Local file or URL (mmengine's loaders; URLs are
            downloaded to the torch hub cache).
        prefix (str): Key prefix of the ViT in the file (``'backbone.'``
            for mmpretrain classifier files, ``''`` for timm files).

    Returns:
        tuple: ``loaded`` and ``not_loaded`` parameter names of ``vit``.

    Raises:
        ValueError: If no encoder layer of ``vit`` is in the file (a wrong
            file or prefix), or if the file's width or depth is smaller
            than ``vit``'s.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) \
        if isinstance(ckpt, dict) else ckpt
    weights = convert_vit_state_dict(state, prefix)
    ours = vit.state_dict()
    if not any(k.startswith('layers.') and k in ours for k in weights):
        raise ValueError(
            f'CellViT.init_cfg checkpoint {checkpoint}: no transformer layer '
            f'found under prefix {prefix!r} (expected mmpretrain keys '
            "'<prefix>layers.0.ln1.weight' or timm keys "
            "'blocks.0.norm1.weight'); set init_cfg.prefix to the ViT's key "
            "prefix (e.g. 'backbone.') or give a ViT checkpoint")
    if 'pos_embed' in weights:
        pos = weights['pos_embed']
        grid = int(math.isqrt(pos.shape[1] - 1))
        if grid * grid + 1 != pos.shape[1]:
            raise ValueError(f'{checkpoint}: pos_embed of {pos.shape[1]} '
                             'tokens is not a square grid + class token')
        weights['pos_embed'] = resize_pos_embed(
            pos.float(), (grid, grid), vit.map_size, num_extra_tokens=1)
    bad = [k for k, v in weights.items()
           if k in ours and v.shape != ours[k].shape]
    if bad:
        raise ValueError(
            f'CellViT.init_cfg checkpoint {checkpoint} does not fit this '
            f'CellViT (embed_dims={vit.embed_dims}): shapes differ for '
            f'{bad[:4]}; ImageNet ViT-B weights need embed_dims=768, '
            'num_heads=12, mlp_ratio=4 (or drop init_cfg)')
    used = {k: v for k, v in weights.items() if k in ours}
    vit.load_state_dict(used, strict=False)
    not_loaded = sorted(set(ours) - set(used))
    MMLogger.get_current_instance().info(
        f'CellViT: loaded {len(used)} tensors from {checkpoint}; kept the '
        f'initialisation of {not_loaded}')
    return sorted(used), not_loaded


__all__ = ['CellViT', 'convert_vit_state_dict', 'load_vit_weights',
           'VIT_B16_IN21K_URL']
