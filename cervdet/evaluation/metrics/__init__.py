from .roc_auc import ROCAUC, binary_roc_auc
__all__ = []
__all__ += ['ROCAUC', 'binary_roc_auc']
from .corloc_metric import CorLocMetric, corloc_hits
__all__ += ['CorLocMetric', 'corloc_hits']
from .iou_range_coco_metric import (IoURangeCocoMetric, iou_thresholds,
                                    range_ap)
__all__ += ['IoURangeCocoMetric', 'iou_thresholds', 'range_ap']
from .knn_metric import (KNNMetric, best_k, binary_labels, f1_scores,
                         knn_evaluate, stratified_splits, weighted_knn_predict)
__all__ += ['KNNMetric', 'weighted_knn_predict', 'stratified_splits',
            'f1_scores', 'knn_evaluate', 'best_k', 'binary_labels']
from .roi_classification_metric import (ROIClassificationMetric,
                                        confusion_matrix, per_class_prf)
__all__ += ['ROIClassificationMetric', 'confusion_matrix', 'per_class_prf']
