"""COCO-format cervical cytology detection data set."""
import os
import os.path as osp
from typing import Any, List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path

from .classes import BETHESDA_CLASSES, BETHESDA_PALETTE
from .coco_checks import check_coco, format_problem
from .image_checks import image_problem


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
    - The first time each image is loaded its header is read and its size
      compared with the annotation's ``width``/``height``: a mismatch (boxes
      would be outside the image, ``loss_bbox = inf``) raises an error with
      the file and both sizes. ``CervdetRunner`` checks all headers of the
      train/val/test sets before a run starts
      (:class:`~cervdet.engine.hooks.CheckImagesHook`).
    - A missing annotation file raises ``FileNotFoundError`` saying where it
      was looked for (a relative ``data_root`` is read from the current
      folder) and how to build the data.

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
        self._sizes_checked = set()
        super().__init__(*args, **kwargs)

    def _check_ann_file_exists(self) -> None:
        ann = str(self.ann_file)
        if '://' in ann or osp.isfile(ann):
            return
        root = str(self.data_root or '')
        where = (f'data_root={root!r} is relative, so it is read from the '
                 f'current folder {os.getcwd()}: run from the project root '
                 'or give an absolute data_root' if root and
                 not osp.isabs(root) else f'data_root={root!r}')
        raise FileNotFoundError(
            f'{self.__class__.__name__}: annotation file {ann} not found '
            f'({where}). Build the data set first (docs/data_preparation.md, '
            'e.g. tools/dataset_converters/build_mosaic.py), or point the '
            'config at it: --cfg-options train_dataloader.dataset.data_root='
            '/path/to/data/ (and val_/test_dataloader).')

    def _check_annotations(self) -> None:
        """Check the annotation file (and that its images exist) with
        :func:`~cervdet.datasets.coco_checks.check_coco`.

        Raises:
            CocoAnnotationError: On any error (warnings pass), naming the
                file, each problem with its first examples, and its fix.
        """
        self._check_ann_file_exists()
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

    def _check_image_size(self, idx: int) -> None:
        """Header-only size check of image ``idx`` on its first load."""
        if idx in self._sizes_checked:
            return
        info = self.get_data_info(idx)
        path = info.get('img_path')
        if path and osp.isfile(path):
            problem = image_problem(path, info.get('width'),
                                    info.get('height'))
            if problem and 'annotation says' in problem:
                raise CocoAnnotationError(
                    f'{problem} in {self.ann_file}: its boxes would not '
                    'match the pixels (training gives loss_bbox = inf, '
                    'testing AP 0). Fix: re-export the image or correct '
                    'width/height (and the boxes) in the annotation file; '
                    'tools/dataset_converters/check_coco.py --check-images '
                    'lists every such file.')
        self._sizes_checked.add(idx)

    def prepare_data(self, idx: int) -> Any:
        self._check_image_size(idx)
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
