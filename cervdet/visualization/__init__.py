"""Visualisation helpers of cervdet."""
from .pred_vs_gt import draw_marked_points, draw_pred_vs_gt
from .roi_drawer import attention_colours, class_colours, draw_roi, pick_roi_result
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
    'attention_colours', 'class_colours', 'draw_roi', 'pick_roi_result',
    'draw_pred_vs_gt', 'draw_marked_points',
    'detections_to_geojson',
    'draw_gallery', 'draw_overview', 'read_detections_table', 'slide_palette',
    'write_detections_table', 'write_geojson', 'write_png'
]
