from .roc_auc import ROCAUC, binary_roc_auc
__all__ = []
__all__ += ['ROCAUC', 'binary_roc_auc']
from .corloc_metric import CorLocMetric, corloc_hits
__all__ += ['CorLocMetric', 'corloc_hits']
from .iou_range_coco_metric import (IoURangeCocoMetric, iou_thresholds,
                                    range_ap)
__all__ += ['IoURangeCocoMetric', 'iou_thresholds', 'range_ap']
