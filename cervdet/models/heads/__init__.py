from .dino_projection_head import (
    DINOProjectionHead,
    WeightNormLinear,
    weight_norm_weight,
)

__all__ = ['DINOProjectionHead', 'WeightNormLinear', 'weight_norm_weight']
