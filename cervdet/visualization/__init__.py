"""Visualisation helpers of cervdet: drawings of ROIs and of screened slides
(the files of a slide are written by :mod:`cervdet.apis.slide.writers`)."""
from .roi_drawer import attention_colours, class_colours, draw_roi
from .slide_drawer import (
    DEFAULT_SLIDE_PALETTE,
    draw_gallery,
    draw_overview,
    slide_palette,
)

__all__ = [
    'attention_colours', 'class_colours', 'draw_roi', 'DEFAULT_SLIDE_PALETTE',
    'draw_gallery', 'draw_overview', 'slide_palette'
]
