from .dual_align_faster_rcnn import (
    LABELED_CONFIDENCES,
    LABELED_SOURCES,
    DualAlignFasterRCNN,
)
from .feature_distiller import (
    FG_BOX_SOURCES,
    FeatureDistiller,
    FGDDistiller,
    extract_student_state_dict,
    gt_boxes_known,
    parse_feature_spec,
    select_teacher_boxes,
)
from .ld_wsccd import LDWSCCD, boxes_known, select_regions
from .pcn_retinanet import PCNRetinaNet
from .wsod_detector import WSODDetector, image_labels_from_sample

__all__ = [
    'DualAlignFasterRCNN', 'LABELED_CONFIDENCES', 'LABELED_SOURCES',
    'PCNRetinaNet', 'FeatureDistiller', 'FGDDistiller',
    'extract_student_state_dict', 'FG_BOX_SOURCES', 'gt_boxes_known',
    'parse_feature_spec', 'select_teacher_boxes', 'WSODDetector',
    'image_labels_from_sample', 'LDWSCCD', 'boxes_known', 'select_regions'
]
