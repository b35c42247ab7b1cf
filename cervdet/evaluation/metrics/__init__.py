from .corloc_metric import CorLocMetric, corloc_hits
from .iou_range_coco_metric import IoURangeCocoMetric, iou_thresholds, range_ap
from .knn_metric import (
    KNNMetric,
    best_k,
    binary_labels,
    f1_scores,
    knn_evaluate,
    knn_transfer_sensitivity,
    stratified_splits,
    weighted_knn_predict,
)
from .point_hit_metric import PointHitMetric
from .roc_auc import ROCAUC, binary_roc_auc
from .roi_classification_metric import (
    ROIClassificationMetric,
    confusion_matrix,
    per_class_prf,
)
from .slide_screening_metric import (
    BETHESDA_SLIDE_GRADES,
    SlideScreeningMetric,
    calibrate_grade_thresholds,
    call_grade,
    screening_summary,
    sensitivity_at_specificity,
    slide_auc,
    topk_hit_rate,
    triage_share_at_full_sensitivity,
)

__all__ = [
    'ROCAUC', 'binary_roc_auc', 'CorLocMetric', 'corloc_hits',
    'IoURangeCocoMetric', 'iou_thresholds', 'range_ap', 'KNNMetric',
    'weighted_knn_predict', 'stratified_splits', 'f1_scores', 'knn_evaluate',
    'knn_transfer_sensitivity', 'best_k', 'binary_labels',
    'ROIClassificationMetric', 'confusion_matrix', 'per_class_prf',
    'SlideScreeningMetric', 'slide_auc', 'sensitivity_at_specificity',
    'triage_share_at_full_sensitivity', 'topk_hit_rate', 'screening_summary',
    'calibrate_grade_thresholds', 'call_grade', 'BETHESDA_SLIDE_GRADES',
    'PointHitMetric'
]
