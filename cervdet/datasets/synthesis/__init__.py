"""Synthetic detection images ("mosaics") composed from real cell crops.

The crops are real (CRIC Cervix, ComparisonDetector); the composition is
synthetic: abnormal crops are pasted among normal (NILM) crops on a real
glass background, so every box is known exactly. Source crops are split per
class into train/val/test *before* composing, so no crop appears in two
splits. ``tools/dataset_converters/build_mosaic.py`` is the command line of
:func:`build_mosaic_dataset`.

- :mod:`.config`: presets and :class:`MosaicConfig`;
- :mod:`.sources`: the source crops, their split, a crop reader;
- :mod:`.backgrounds`: blank glass of a real field, quilted or paper-white;
- :mod:`.matting`: soft alpha masks of the cell of a crop;
- :mod:`.placement`: augmenting, placing and pasting a cell;
- :mod:`.mosaic`: composing images and writing a COCO data set.
"""
from .backgrounds import (
    BackgroundBank,
    blank_mask,
    find_blank_patches,
    load_background_bank,
    low_frequency_gain,
    paper_background,
    quilt_background,
)
from .config import PRESETS, MosaicConfig, class_names, make_config
from .matting import (
    cell_alpha,
    crop_background_colour,
    crop_contrast,
    mask_bbox,
    soft_ellipse,
)
from .mosaic import (
    boxes_per_category,
    build_mosaic_dataset,
    build_split,
    compose_image,
    negative_flags,
    prepare_out_dir,
)
from .placement import (
    balance_and_matte,
    find_place,
    paste,
    paste_cells,
    prepare_cell,
)
from .sources import (
    CRIC_DIR,
    FIELD_FILE,
    SPLITS,
    TCT_DIR,
    CropCache,
    list_source_crops,
    split_items,
    split_source_crops,
    usable_abnormal,
)

__all__ = [
    'BackgroundBank', 'blank_mask', 'find_blank_patches',
    'load_background_bank', 'low_frequency_gain', 'paper_background',
    'quilt_background', 'PRESETS', 'MosaicConfig', 'class_names',
    'make_config', 'cell_alpha', 'crop_background_colour', 'crop_contrast',
    'mask_bbox', 'soft_ellipse', 'build_mosaic_dataset', 'build_split',
    'compose_image', 'negative_flags', 'prepare_out_dir',
    'boxes_per_category', 'find_place', 'paste', 'prepare_cell',
    'balance_and_matte', 'paste_cells', 'CRIC_DIR', 'FIELD_FILE', 'SPLITS',
    'TCT_DIR', 'CropCache', 'list_source_crops', 'split_items',
    'split_source_crops', 'usable_abnormal'
]
