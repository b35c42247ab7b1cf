from .base_bag_classifier import BaseBagClassifier, build_mmpretrain_module
from .global_local_roi_classifier import GlobalLocalROIClassifier
from .roi_bag_data_preprocessor import ROIBagDataPreprocessor
from .slide_bag_data_preprocessor import SlideBagDataPreprocessor, pad_slide_bags
from .slide_mil_classifier import SlideMILClassifier

__all__ = [
    'BaseBagClassifier', 'build_mmpretrain_module', 'GlobalLocalROIClassifier',
    'ROIBagDataPreprocessor', 'SlideMILClassifier', 'SlideBagDataPreprocessor',
    'pad_slide_bags'
]
