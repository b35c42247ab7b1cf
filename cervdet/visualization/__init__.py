"""Visualisation helpers of cervdet: drawings of ROIs, of predictions
against marked cells and of screened slides (the files of a slide are
written by :mod:`cervdet.apis.slide.writers`)."""
from .pred_vs_gt import draw_marked_points, draw_pred_vs_gt
from .roi_drawer import attention_colours, class_colours, draw_roi, pick_roi_result
from .slide_drawer import (
    DEFAULT_SLIDE_PALETTE,
    draw_gallery,
    draw_overview,
    slide_palette,
)

__all__ = [
    'attention_colours', 'class_colours', 'draw_roi', 'pick_roi_result',
    'draw_pred_vs_gt', 'draw_marked_points', 'DEFAULT_SLIDE_PALETTE',
    'draw_gallery', 'draw_overview', 'slide_palette'
]
