"""COCO-format cervical cytology detection data set."""
from typing import Any, List

from mmengine.fileio import get_local_path
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .classes import BETHESDA_CLASSES, BETHESDA_PALETTE
from .coco_checks import check_coco, format_problem


class CocoAnnotationError(ValueError):
    """A COCO annotation file that cannot be trained on as it is."""


@DATASETS.register_module()
class CervicalCocoDataset(CocoDataset):
    """COCO detection data of cervical cells, with Bethesda metainfo.

    Compared with :class:`mmdet.datasets.CocoDataset`:

    - ``METAINFO`` holds the abnormal classes of The Bethesda System
      (``ASC-US, ASC-H, LSIL, HSIL, SCC``) and a palette; set
      ``metainfo=dict(classes=..., palette=...)`` for other label sets
      (e.g. :data:`cervdet.datasets.classes.TCT11_CLASSES`).
    - Images without boxes are kept (``filter_cfg=None`` by default): in
      screening most fields are negative, and a detector must see them.
    - The file is checked when loaded, by
      :func:`~cervdet.datasets.coco_checks.check_coco` (the checker of
      ``tools/dataset_converters/check_coco.py``); instead of silently
      dropping what it cannot use (as ``CocoDataset`` does), it raises
      :class:`CocoAnnotationError` naming the file, the entries and the fix
      for: invalid JSON, an empty file, missing keys, duplicate ids,
      annotations of unknown images or categories, category names not in
      ``classes``, malformed, degenerate or out-of-image boxes, and missing
      image files (existence only: images are not opened here).
    - An image that exists but cannot be decoded raises an error naming the
      file when it is loaded.

    Args:
        unknown_classes (str): ``'error'`` (default) or ``'ignore'``: what to
            do with categories whose name is not in ``classes`` (``'ignore'``
            trains on a subset of a file's classes).
        bbox_tolerance (float): Pixels a box may exceed its image.
            Defaults to 1.0.
        check_image_files (bool): Check that every image file exists when
            the annotations are loaded (local files only). Defaults to True.
        file_suffix (str): Appended to every ``file_name`` that does not end
            with it already (CCAgT's names lack ``.jpg``). Defaults to ''.
        **kwargs: See :class:`mmdet.datasets.CocoDataset`.
    """

    METAINFO = dict(classes=BETHESDA_CLASSES, palette=BETHESDA_PALETTE)

    def __init__(self,
                 *args,
                 unknown_classes: str = 'error',
                 bbox_tolerance: float = 1.0,
                 check_image_files: bool = True,
                 file_suffix: str = '',
                 **kwargs) -> None:
        if unknown_classes not in ('error', 'ignore'):
            raise ValueError('unknown_classes must be "error" or "ignore", '
                             f'got {unknown_classes!r}')
        self.unknown_classes = unknown_classes
        self.bbox_tolerance = bbox_tolerance
        self.check_image_files = check_image_files
        self.file_suffix = file_suffix
        super().__init__(*args, **kwargs)

    def _check_annotations(self) -> None:
        """Check the annotation file (and that its images exist) with
        :func:`~cervdet.datasets.coco_checks.check_coco`.

        Raises:
            CocoAnnotationError: On any error (warnings pass), naming the
                file, each problem with its first examples, and its fix.
        """
        img_dir = self.data_prefix.get('img', '') \
            if self.check_image_files else None
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            report = check_coco(
                local_path,
                img_dir=img_dir,
                file_suffix=self.file_suffix,
                tolerance=self.bbox_tolerance,
                max_examples=3,
                classes=self.metainfo['classes'],
                read_images=False)
        errors = [
            code for code in report['errors']
            if not (code == 'unknown_class'
                    and self.unknown_classes == 'ignore')
        ]
        if errors:
            lines = '\n'.join(f'  - {format_problem(report, code)}'
                              for code in errors)
            raise CocoAnnotationError(
                f'{self.__class__.__name__}: {self.ann_file} cannot be used '
                f'as it is:\n{lines}\nRun tools/dataset_converters/'
                'check_coco.py on it for the full list.')

    def load_data_list(self) -> List[dict]:
        self._check_annotations()
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> dict:
        info = raw_data_info['raw_img_info']
        if self.file_suffix and not info['file_name'].endswith(
                self.file_suffix):
            info['file_name'] = info['file_name'] + self.file_suffix
        return super().parse_data_info(raw_data_info)

    def prepare_data(self, idx: int) -> Any:
        try:
            return super().prepare_data(idx)
        except AssertionError as e:
            # mmcv's LoadImageFromFile asserts 'failed to load image: <path>'
            # when the bytes do not decode.
            if 'failed to load image' not in str(e):
                raise
            path = self.get_data_info(idx)['img_path']
            raise CocoAnnotationError(
                f'{path}: the file exists but cannot be decoded as an image '
                f'(corrupt or not an image), listed in {self.ann_file}. Fix: '
                're-export it or remove it from the annotation file; '
                'tools/dataset_converters/check_coco.py --check-images finds '
                'all such files.') from e
