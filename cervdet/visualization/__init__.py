"""Visualisation helpers of cervdet."""
from .roi_drawer import attention_colours, class_colours, draw_roi
from .slide_outputs import (
    detections_to_geojson,
    draw_gallery,
    draw_overview,
    read_detections_table,
    slide_palette,
    write_detections_table,
    write_geojson,
    write_png,
)

__all__ = [
    'attention_colours', 'class_colours', 'draw_roi', 'detections_to_geojson',
    'draw_gallery', 'draw_overview', 'read_detections_table', 'slide_palette',
    'write_detections_table', 'write_geojson', 'write_png'
]
