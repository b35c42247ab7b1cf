"""The logic of the dataset converters of ``tools/dataset_converters/``:
public annotation formats -> the COCO files and list files cervdet's
configs read. Each tool there is the command line of one module here
(``check_coco.py`` of :mod:`cervdet.datasets.coco_checks`,
``cric_to_coco.py`` of :mod:`cervdet.datasets.cric` and :mod:`.cric_files`).
"""
from .cric_files import existing_annotation_files, write_cric_coco
from .herlev import (
    OUTPUT_FILES,
    HerlevSplitError,
    existing_outputs,
    herlev_binary_split,
    split_folder,
    write_lists,
)
from .isbi2014 import (
    convert_isbi2014,
    fill_mask,
    find_pairs,
    is_outline_mask,
    mask_to_boxes,
    read_mask,
)
from .unlabeled_images import categories_from, images_to_coco
from .voc import VOCFormatError, collect_xmls, convert_voc, parse_voc_xml

__all__ = [
    'existing_annotation_files', 'write_cric_coco', 'OUTPUT_FILES',
    'HerlevSplitError', 'existing_outputs', 'herlev_binary_split',
    'split_folder', 'write_lists', 'convert_isbi2014', 'fill_mask',
    'find_pairs', 'is_outline_mask', 'mask_to_boxes', 'read_mask',
    'categories_from', 'images_to_coco',
    'VOCFormatError', 'collect_xmls', 'convert_voc', 'parse_voc_xml'
]
