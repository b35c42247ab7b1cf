__all__ = []
from .dino_projection_head import (DINOProjectionHead,  # noqa: E402
                                   WeightNormLinear, weight_norm_weight)

__all__ += ['DINOProjectionHead', 'WeightNormLinear', 'weight_norm_weight']
