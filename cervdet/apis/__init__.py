"""Inference APIs of cervdet."""
from .det_init import init_detector_strict
from .roi_inference import (
    ROIInferencer,
    cell_normalisation,
    load_coco_boxes,
    select_detections,
)
from .slide import SlideInferencer, SlideSettings, list_slides

__all__ = [
    'ROIInferencer', 'cell_normalisation', 'load_coco_boxes',
    'select_detections', 'SlideInferencer', 'SlideSettings', 'list_slides',
    'init_detector_strict'
]
