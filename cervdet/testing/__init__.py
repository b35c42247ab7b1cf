"""Helpers for tests and benchmarks (like ``mmdet.testing``)."""
from .pyramidal_tiff import write_pyramidal_tiff, write_pyramidal_tiff_from_array
from .random_detector import random_scoring_detector

__all__ = [
    'random_scoring_detector', 'write_pyramidal_tiff',
    'write_pyramidal_tiff_from_array'
]
