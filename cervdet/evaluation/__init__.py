from . import metrics
from .cell_feature_probe import probe_cell_features
from .knn import knn_eval_report
from .metrics import *  # noqa: F401,F403
from .slide_eval import calibrate_slide_thresholds, evaluate_slides

__all__ = metrics.__all__ + [
    'knn_eval_report', 'evaluate_slides', 'calibrate_slide_thresholds',
    'probe_cell_features'
]
