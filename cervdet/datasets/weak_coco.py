"""Image-level (weak) labels from a COCO detection set, for OICR-style
weakly supervised detection, optionally with a share of box-annotated
images (mixed supervision).

A config trains a weakly supervised detector on any COCO set by changing the
dataset type and adding the two keys to ``PackDetInputs``::

    from cervdet.datasets.weak_coco import WEAK_META_KEYS  # or write it out
    train_dataloader = dict(dataset=dict(
        type='WeakCocoDataset', box_fraction=0.0,
        proposal_file='proposals/train.pkl', ...,
        pipeline=[..., dict(type='PackDetInputs', meta_keys=WEAK_META_KEYS)]))

The detector reads ``data_sample.img_labels`` (and ``has_boxes``).
"""
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
from mmdet.registry import DATASETS
from mmengine.fileio import load
from mmengine.logging import print_log
from mmengine.utils import is_abs

from .cervical_coco import CervicalCocoDataset
from .proposals import proposal_key

#: mmdet's default ``PackDetInputs`` meta keys plus the weak labels: use
#: ``PackDetInputs(meta_keys=WEAK_META_KEYS)`` so that every data sample
#: carries ``img_labels`` and ``has_boxes``.
WEAK_META_KEYS: tuple = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                         'scale_factor', 'flip', 'flip_direction',
                         'img_labels', 'has_boxes')

#: :data:`WEAK_META_KEYS` plus ``instances`` (the image's boxes in original
#: image coordinates) for test pipelines: ``CorLocMetric`` then reads the
#: ground truth from there, whatever the order of ``LoadAnnotations`` and
#: ``Resize`` in the pipeline.
WEAK_TEST_META_KEYS: tuple = WEAK_META_KEYS + ('instances', )


def select_box_images(img_ids: Sequence[int], positive: Sequence[bool],
                      fraction: float, seed: int) -> np.ndarray:
    """Images that keep their boxes in mixed supervision.

    Positive and negative images are drawn separately (stratified), each
    ``round(fraction * n)`` of them, from a permutation of the sorted image
    ids seeded by ``seed``: the choice does not depend on the order of the
    file, and with one seed a larger fraction keeps a superset of the
    images of a smaller one.

    Args:
        img_ids (Sequence[int]): Image ids (unique).
        positive (Sequence[bool]): Whether each image has a box.
        fraction (float): Share of images keeping their boxes, in [0, 1].
        seed (int): Seed of the draw.

    Returns:
        np.ndarray: bool ``[len(img_ids)]``, True where the boxes are kept.
    """
    ids = np.asarray(img_ids, dtype=np.int64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    keep = np.zeros(len(ids), dtype=bool)
    rng = np.random.default_rng(seed)
    for stratum in (True, False):
        idx = np.flatnonzero(positive == stratum)
        idx = idx[np.argsort(ids[idx], kind='stable')]
        perm = idx[rng.permutation(len(idx))]
        keep[perm[:int(round(fraction * len(idx)))]] = True
    return keep


@DATASETS.register_module()
class WeakCocoDataset(CervicalCocoDataset):
    """A COCO detection set seen through image-level labels.

    Every data info gets

    - ``img_labels`` (list[int]): sorted class indices present in the image
      (crowd boxes count: the class is there); ``[]`` for a negative image.
      Negative images stay in the set (they must train).
    - ``has_boxes`` (bool): whether ``instances`` (the boxes) were kept. In
      training mode the boxes of all images are dropped but those of a
      ``box_fraction`` of the positive and of the negative images (see
      :func:`select_box_images`); in test mode (``test_mode=True``) all
      boxes are kept, as evaluation (e.g. ``CorLocMetric``) needs them.

    Works with ``proposal_file`` (a pickle of
    :func:`cervdet.datasets.proposals.generate_for_coco`, i.e.
    ``tools/dataset_converters/generate_proposals.py``, or any file in mmdet's
    format): each data info then holds ``proposals`` (``dict(bboxes=float32
    [N, 4] xyxy, scores=float32 [N])``) for ``LoadProposals``. Proposals are
    matched as in mmdet 3.3 (key ``<folder name>/<file name>``, see
    :func:`proposal_key`) but a missing image or a malformed entry raises an
    error naming the file and the fix; extra entries are ignored.

    Configs must add the keys to ``PackDetInputs``: ``meta_keys=``
    :data:`WEAK_META_KEYS` (:data:`WEAK_TEST_META_KEYS` for test pipelines).

    Args:
        box_fraction (float): Share of images (in training mode) that keep
            their boxes, in [0, 1]. Defaults to 0.0 (image labels only).
        box_seed (int): Seed of the choice of those images. Defaults to 0.
        **kwargs: See :class:`CervicalCocoDataset` (``filter_cfg`` must not
            drop images without boxes).
    """

    def __init__(self,
                 *args,
                 box_fraction: float = 0.0,
                 box_seed: int = 0,
                 **kwargs) -> None:
        box_fraction = float(box_fraction)
        if not 0.0 <= box_fraction <= 1.0:
            raise ValueError(f'WeakCocoDataset: box_fraction must be in '
                             f'[0, 1], got {box_fraction}')
        filter_cfg = kwargs.get('filter_cfg') or {}
        if filter_cfg.get('filter_empty_gt', False):
            raise ValueError(
                'WeakCocoDataset: filter_cfg=dict(filter_empty_gt=True) would '
                'drop the negative images, which a weakly supervised detector '
                'must see; set filter_cfg=None or '
                'dict(filter_empty_gt=False)')
        self.box_fraction = box_fraction
        self.box_seed = int(box_seed)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load the COCO file, add ``img_labels`` / ``has_boxes`` and drop the
        boxes of the images without box supervision."""
        data_list = super().load_data_list()
        labels = [
            sorted({int(inst['bbox_label']) for inst in info['instances']})
            for info in data_list
        ]
        if self.test_mode:
            keep = np.ones(len(data_list), dtype=bool)
        else:
            keep = select_box_images([info['img_id'] for info in data_list],
                                     [bool(lab) for lab in labels],
                                     self.box_fraction, self.box_seed)
        for info, lab, has_boxes in zip(data_list, labels, keep):
            info['img_labels'] = lab
            info['has_boxes'] = bool(has_boxes)
            if not has_boxes:
                info['instances'] = []
        return data_list

    def load_proposals(self) -> None:
        """Attach each image's entry of ``proposal_file`` as ``proposals``.

        Raises:
            ValueError: If the file is not a dict of ``{'bboxes', ...}``
                entries, lacks images of the set, or an entry is malformed.
        """
        path = self.proposal_file
        if not is_abs(path) and self.data_root:
            path = osp.join(self.data_root, path)
        self.proposal_file = path
        fix = ('regenerate it for this annotation file with tools/'
               'dataset_converters/generate_proposals.py --ann-file '
               f'{self.ann_file} --img-dir <image folder> --out {path}')
        try:
            proposals: Dict = load(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'{self.__class__.__name__}: proposal_file {path} not found; '
                f'{fix}') from e
        if not isinstance(proposals, dict):
            raise ValueError(
                f'{path}: a proposal file is a dict {{"<folder>/<file name>": '
                f'dict(bboxes=..., scores=...)}}, got '
                f'{type(proposals).__name__}; {fix}')
        keys = [proposal_key(info['img_path']) for info in self.data_list]
        missing = [k for k in keys if k not in proposals]
        if missing:
            raise ValueError(
                f'{path}: no proposals for {len(missing)} of the '
                f'{len(keys)} images of {self.ann_file} (e.g. '
                f'{missing[:3]}; keys are "<folder name>/<file name>"); '
                f'{fix}')
        for info, key in zip(self.data_list, keys):
            entry = proposals[key]
            bboxes = entry.get('bboxes') if hasattr(entry, 'get') else None
            if not (isinstance(bboxes, np.ndarray) and bboxes.ndim == 2
                    and bboxes.shape[1] == 4):
                raise ValueError(
                    f'{path}: entry {key!r} needs "bboxes" as a numpy array '
                    f'[N, 4] (x1, y1, x2, y2), got '
                    f'{getattr(bboxes, "shape", type(bboxes).__name__)}; '
                    f'{fix}')
            info['proposals'] = entry
        extra = len(proposals) - len(set(keys))
        if extra > 0:
            print_log(
                f'{path}: {extra} entries for images not in '
                f'{self.ann_file} are ignored', logger='current')


__all__ = ['WeakCocoDataset', 'WEAK_META_KEYS', 'WEAK_TEST_META_KEYS',
           'proposal_key', 'select_box_images']
