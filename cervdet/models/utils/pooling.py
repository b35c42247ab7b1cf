"""One pooled feature vector per image from a backbone's output."""
from typing import Sequence, Union

from torch import Tensor


def pool_backbone_output(feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """Pooled feature of the last backbone stage.

    Args:
        feats (Tensor | tuple): Backbone output; the last element is used:
            Tensor[N, C, H, W] (CNN, global average pooled), Tensor[N, C]
            (ViT ``cls_token``) or Tensor[N, L, C] (tokens, mean pooled).

    Returns:
        Tensor[N, C]
    """
    x = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if isinstance(x, (tuple, list)):  # e.g. ViT out_type='raw' pairs
        x = x[-1]
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    if x.dim() == 3:
        return x.mean(dim=1)
    if x.dim() == 2:
        return x
    raise ValueError('cannot pool a backbone output of shape '
                     f'{tuple(x.shape)}: expected [N, C, H, W], [N, L, C] '
                     'or [N, C]')


__all__ = ['pool_backbone_output']
