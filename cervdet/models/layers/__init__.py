from .patch_crop import (crop_patches, normalization_transfer, patch_regions,
                         transfer_normalization)
from .topk_suspicious import (count_per_image, flatten_dense_outputs,
                              rank_within_groups, select_topk_suspicious)

__all__ = [
    'crop_patches', 'normalization_transfer', 'patch_regions',
    'transfer_normalization', 'count_per_image', 'flatten_dense_outputs',
    'rank_within_groups', 'select_topk_suspicious'
]
