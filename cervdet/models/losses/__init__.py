from .fgd_loss import (FGDLoss, fgd_attention, fgd_attention_loss,
                       fgd_feature_loss, fgd_global_loss, fgd_masks)
from .ranking_loss import RankingLoss, ranking_loss
from .rcc_loss import RCCLoss, pool_features, rcc_loss, relation_matrix

__all__ = [
    'RankingLoss', 'ranking_loss', 'RCCLoss', 'rcc_loss', 'relation_matrix',
    'pool_features', 'FGDLoss', 'fgd_masks', 'fgd_attention',
    'fgd_feature_loss', 'fgd_attention_loss', 'fgd_global_loss'
]
