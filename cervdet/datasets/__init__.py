from .cervical_coco import CervicalCocoDataset, CocoAnnotationError
from .classes import (BETHESDA_CLASSES, BETHESDA_PALETTE, TCT11_CLASSES,
                      TCT11_PALETTE)
from .coco_checks import check_coco, format_report
from .weak_coco import (WEAK_META_KEYS, WEAK_TEST_META_KEYS, WeakCocoDataset,
                        select_box_images)

__all__ = [
    'CervicalCocoDataset', 'CocoAnnotationError', 'BETHESDA_CLASSES',
    'BETHESDA_PALETTE', 'TCT11_CLASSES', 'TCT11_PALETTE', 'check_coco',
    'format_report', 'WeakCocoDataset', 'WEAK_META_KEYS',
    'WEAK_TEST_META_KEYS', 'select_box_images'
]
