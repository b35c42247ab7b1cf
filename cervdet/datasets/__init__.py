from .cell_feature_cache import extract_cell_features
from .cervical_coco import CervicalCocoDataset, CocoAnnotationError
from .classes import BETHESDA_CLASSES, BETHESDA_PALETTE, TCT11_CLASSES, TCT11_PALETTE
from .coco_checks import check_coco, format_report
from .roi_bag_dataset import ROIBagDataset, cache_name, xywh_to_xyxy_checked
from .slide_bag_dataset import SlideBagDataset, load_slide_bag, read_slide_labels
from .slide_readers import SlideOpenError, SlideReader, TiffFileReader, open_slide
from .slide_tiles import (
    SlideTileDataset,
    TilePlan,
    collate_tiles,
    plan_tiles,
    resolve_read_scale,
    tissue_mask,
)
from .ssl_tiles import extract_tiles
from .transforms import *  # noqa: F401,F403
from .weak_coco import (
    WEAK_META_KEYS,
    WEAK_TEST_META_KEYS,
    WeakCocoDataset,
    select_box_images,
)

__all__ = [
    'CervicalCocoDataset', 'CocoAnnotationError', 'BETHESDA_CLASSES',
    'BETHESDA_PALETTE', 'TCT11_CLASSES', 'TCT11_PALETTE', 'check_coco',
    'format_report', 'WeakCocoDataset', 'WEAK_META_KEYS',
    'WEAK_TEST_META_KEYS', 'select_box_images', 'ROIBagDataset', 'cache_name',
    'xywh_to_xyxy_checked', 'SlideBagDataset', 'load_slide_bag',
    'read_slide_labels', 'SlideOpenError', 'SlideReader',
    'TiffFileReader', 'open_slide', 'SlideTileDataset', 'TilePlan',
    'collate_tiles', 'plan_tiles', 'resolve_read_scale', 'tissue_mask',
    'extract_tiles', 'extract_cell_features'
]
__all__ += transforms.__all__  # noqa: F405
