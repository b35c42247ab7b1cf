"""Inference APIs of cervdet."""
from .roi_inference import (ROIInferencer, cell_normalisation,
                            load_coco_boxes, select_detections)
from .slide_inference import SlideInferencer, list_slides

__all__ = [
    'ROIInferencer', 'cell_normalisation', 'load_coco_boxes',
    'select_detections', 'SlideInferencer', 'list_slides'
]
