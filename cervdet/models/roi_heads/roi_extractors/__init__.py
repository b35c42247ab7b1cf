from .multi_scale_fusion_roi_extractor import MultiScaleFusionRoIExtractor

__all__ = ['MultiScaleFusionRoIExtractor']
