from .global_local_roi_classifier import GlobalLocalROIClassifier
from .roi_bag_data_preprocessor import ROIBagDataPreprocessor
from .slide_bag_data_preprocessor import SlideBagDataPreprocessor, pad_slide_bags
from .slide_mil_classifier import SlideMILClassifier

__all__ = [
    'GlobalLocalROIClassifier', 'ROIBagDataPreprocessor', 'SlideMILClassifier',
    'SlideBagDataPreprocessor', 'pad_slide_bags'
]
