from .roc_auc import ROCAUC, binary_roc_auc
__all__ = []
__all__ += ['ROCAUC', 'binary_roc_auc']
from .corloc_metric import CorLocMetric, corloc_hits
__all__ += ['CorLocMetric', 'corloc_hits']
