from .crop_cells import CropCells, crop_and_resize, expand_boxes
from .load_cell_features import LoadCellFeatures, check_cache_boxes
from .pack_roi_bag_inputs import PackROIBagInputs

__all__ = [
    'CropCells', 'crop_and_resize', 'expand_boxes', 'LoadCellFeatures',
    'check_cache_boxes', 'PackROIBagInputs'
]
