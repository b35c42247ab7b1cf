from .oicr_head import OICRHead
from .roi_extractors import MultiScaleFusionRoIExtractor

__all__ = ['OICRHead', 'MultiScaleFusionRoIExtractor']
