__all__ = []
from .global_local_roi_classifier import GlobalLocalROIClassifier  # noqa
from .roi_bag_data_preprocessor import ROIBagDataPreprocessor  # noqa

__all__ += ['GlobalLocalROIClassifier', 'ROIBagDataPreprocessor']
