"""Helpers for tests and benchmarks (like ``mmdet.testing``)."""
from .random_detector import random_scoring_detector

__all__ = ['random_scoring_detector']
