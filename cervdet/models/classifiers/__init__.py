__all__ = []
from .global_local_roi_classifier import GlobalLocalROIClassifier  # noqa
from .roi_bag_data_preprocessor import ROIBagDataPreprocessor  # noqa

__all__ += ['GlobalLocalROIClassifier', 'ROIBagDataPreprocessor']
from .slide_bag_data_preprocessor import (SlideBagDataPreprocessor,  # noqa
                                          pad_slide_bags)
from .slide_mil_classifier import SlideMILClassifier  # noqa
__all__ += ['SlideMILClassifier', 'SlideBagDataPreprocessor', 'pad_slide_bags']
