from .ssd_prior_box_generator import SSDPriorBoxGenerator, ssd_prior_scales

__all__ = ['SSDPriorBoxGenerator', 'ssd_prior_scales']
