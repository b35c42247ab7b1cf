"""Inference APIs of cervdet."""
from .det_init import init_detector_strict
from .roi_folder import infer_roi_images, summarize_roi_results
from .roi_inference import (
    ROIInferencer,
    cell_normalisation,
    load_coco_boxes,
    select_detections,
)
from .slide import SlideInferencer, SlideSettings, list_slides

__all__ = [
    'ROIInferencer', 'cell_normalisation', 'load_coco_boxes',
    'select_detections', 'infer_roi_images', 'summarize_roi_results',
    'SlideInferencer', 'SlideSettings', 'list_slides', 'init_detector_strict'
]
