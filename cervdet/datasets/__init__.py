from .cervical_coco import CervicalCocoDataset, CocoAnnotationError
from .classes import (BETHESDA_CLASSES, BETHESDA_PALETTE, TCT11_CLASSES,
                      TCT11_PALETTE)
from .coco_checks import check_coco, format_report

__all__ = [
    'CervicalCocoDataset', 'CocoAnnotationError', 'BETHESDA_CLASSES',
    'BETHESDA_PALETTE', 'TCT11_CLASSES', 'TCT11_PALETTE', 'check_coco',
    'format_report'
]
