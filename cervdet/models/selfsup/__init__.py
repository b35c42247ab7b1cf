from .dino_pretrain import (
    DINOPretrain,
    cosine_momentum,
    ema_update_,
    group_views_by_shape,
    pool_backbone_output,
)

__all__ = [
    'DINOPretrain', 'cosine_momentum', 'ema_update_', 'pool_backbone_output',
    'group_views_by_shape'
]
