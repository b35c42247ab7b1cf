from .cervdet_runner import CervdetRunner

__all__ = ['CervdetRunner']
