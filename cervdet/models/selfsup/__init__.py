from .dino_pretrain import (
    DINOPretrain,
    cosine_momentum,
    ema_update_,
    group_views_by_shape,
)

__all__ = [
    'DINOPretrain', 'cosine_momentum', 'ema_update_', 'group_views_by_shape'
]
