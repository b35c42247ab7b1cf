from .dino_loss import (
    DINOLoss,
    dino_loss,
    teacher_entropy,
    teacher_temp_schedule,
    uniform_entropy,
    update_center,
)
from .fgd_loss import (
    FGDLoss,
    fgd_attention,
    fgd_attention_loss,
    fgd_feature_loss,
    fgd_global_loss,
    fgd_masks,
)
from .prototype_alignment_loss import (
    PrototypeAlignmentLoss,
    prototype_alignment_loss,
    prototype_alignment_terms,
    prototype_inter_loss,
    prototype_intra_loss,
    sigmoid_rampup,
)
from .proxy_metric_loss import (
    ProxyMetricLoss,
    euclidean_distance,
    proxy_nca_loss,
    select_pseudo_labels,
)
from .ranking_loss import RankingLoss, ranking_loss
from .rcc_loss import RCCLoss, pool_features, rcc_loss, relation_matrix

__all__ = [
    'RankingLoss', 'ranking_loss', 'RCCLoss', 'rcc_loss', 'relation_matrix',
    'pool_features', 'FGDLoss', 'fgd_masks', 'fgd_attention',
    'fgd_feature_loss', 'fgd_attention_loss', 'fgd_global_loss',
    'ProxyMetricLoss', 'proxy_nca_loss', 'euclidean_distance',
    'select_pseudo_labels', 'PrototypeAlignmentLoss',
    'prototype_alignment_loss', 'sigmoid_rampup', 'prototype_alignment_terms',
    'prototype_intra_loss', 'prototype_inter_loss', 'DINOLoss', 'dino_loss',
    'teacher_temp_schedule', 'teacher_entropy', 'update_center',
    'uniform_entropy'
]
