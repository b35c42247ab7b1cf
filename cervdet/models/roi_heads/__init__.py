from .oicr_head import OICRHead

__all__ = ['OICRHead']
