"""Helpers for tests and benchmarks (like ``mmdet.testing``)."""
from .pyramidal_tiff import write_pyramidal_tiff, write_pyramidal_tiff_from_array
from .random_detector import random_scoring_detector
from .roi_assets import make_tiny_roi_assets

__all__ = [
    'make_tiny_roi_assets', 'random_scoring_detector', 'write_pyramidal_tiff',
    'write_pyramidal_tiff_from_array'
]
