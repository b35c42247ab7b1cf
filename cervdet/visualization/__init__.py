"""Visualisation helpers of cervdet."""
from .roi_drawer import attention_colours, class_colours, draw_roi

__all__ = ['attention_colours', 'class_colours', 'draw_roi']
