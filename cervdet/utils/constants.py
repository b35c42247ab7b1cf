"""Constants shared by cervdet's datasets, models, inference APIs and tools.

One definition each, imported where used (as ``mmdet.utils.misc`` holds
mmdet's ``IMG_EXTENSIONS``). Pure Python: this module imports only the
standard library.
"""
import os
from pathlib import Path

#: Extensions of plain image files (lower case, with the dot), as read by the
#: COCO checker and the dataset converters.
IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')

#: ImageNet per-channel pixel statistics in RGB order, on the 0-255 scale
#: (the ``mean``/``std`` of mmdet's and mmpretrain's ImageNet-pretrained
#: configs).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: The shared folder of real public data (crops, fields, CRIC, Herlev, ...)
#: that the data set builders read: ``$CERVDET_SHARED_DATA``, else
#: ``../shared/data`` beside the checkout (the folder holding ``cervdet/``).
SHARED_DATA_ROOT = Path(os.environ.get(
    'CERVDET_SHARED_DATA',
    Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data')).resolve()

__all__ = ['IMG_EXTS', 'IMAGENET_MEAN', 'IMAGENET_STD', 'SHARED_DATA_ROOT']
