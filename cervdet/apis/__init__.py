"""Inference APIs of cervdet."""
from .roi_inference import (ROIInferencer, cell_normalisation,
                            load_coco_boxes, select_detections)

__all__ = [
    'ROIInferencer', 'cell_normalisation', 'load_coco_boxes',
    'select_detections'
]
