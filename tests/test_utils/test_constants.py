"""cervdet.utils.constants is the one definition its users read."""
from cervdet.apis import roi_inference
from cervdet.datasets import coco_checks, slide_readers
from cervdet.utils import constants


def test_values():
    assert constants.IMG_EXTS == ('.jpg', '.jpeg', '.png', '.bmp', '.tif',
                                  '.tiff')
    assert constants.IMAGENET_MEAN == (123.675, 116.28, 103.53)
    assert constants.IMAGENET_STD == (58.395, 57.12, 57.375)


def test_users_share_the_definition():
    assert coco_checks.IMG_EXTS is constants.IMG_EXTS
    assert roi_inference.IMAGENET_MEAN is constants.IMAGENET_MEAN
    assert roi_inference.IMAGENET_STD is constants.IMAGENET_STD
    # slide_readers reads IMG_EXTS and .webp
    assert slide_readers.IMAGE_EXTS == constants.IMG_EXTS + ('.webp', )
    assert set(slide_readers.TIFF_EXTS) <= set(constants.IMG_EXTS)
