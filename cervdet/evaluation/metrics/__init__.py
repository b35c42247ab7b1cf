from .roc_auc import ROCAUC, binary_roc_auc
__all__ = []
__all__ += ['ROCAUC', 'binary_roc_auc']
