from .ssd_multibox_head import SSDMultiBoxHead

__all__ = ['SSDMultiBoxHead']
