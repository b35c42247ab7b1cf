"""ROI labels and the annotation layout shared by every ROI set.

An ROI is labelled after the *worst* cell it holds (:func:`roi_label_of`,
severity NILM < LSIL < HSIL); its annotation file is COCO detection (the
cells, ``categories`` = the cell classes) plus the top-level
``roi_classes`` and ``cell_to_roi_class`` and ``roi_label`` per image
(:func:`roi_coco`), as read by :class:`cervdet.datasets.ROIBagDataset`.
"""
from typing import Dict, Sequence

import numpy as np

from cervdet.datasets.classes import CELL_TO_ROI_CLASS, ROI_CLASSES


def roi_label_of(cell_classes: Sequence[str],
                 mapping: Dict[str, str] = CELL_TO_ROI_CLASS,
                 roi_classes: Sequence[str] = ROI_CLASSES) -> str:
    """ROI class of a set of cells: the worst (most severe) cell present.

    Args:
        cell_classes (Sequence[str]): Cell class names of the ROI.
        mapping (dict[str, str]): Cell class -> ROI class.
        roi_classes (Sequence[str]): ROI classes in severity order.

    Returns:
        str: The ROI class (``roi_classes[0]`` for no cells).
    """
    severity = [roi_classes.index(mapping[c]) for c in cell_classes]
    return roi_classes[max(severity, default=0)]


def balanced_labels(n: int, num_classes: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n`` class indices, each class ``n // C`` or ``n // C + 1`` times.

    Args:
        n (int): Number of ROIs.
        num_classes (int): Number of ROI classes ``C``.
        rng (np.random.Generator): Random generator (shuffles the order).

    Returns:
        np.ndarray: int64 ``[n]``.
    """
    return rng.permutation(np.arange(n, dtype=np.int64) % num_classes)


def roi_coco(cell_classes: Sequence[str],
             mapping: Dict[str, str] = CELL_TO_ROI_CLASS) -> Dict:
    """An empty annotation dict of an ROI split.

    Args:
        cell_classes (Sequence[str]): COCO categories (id = index + 1).
        mapping (dict[str, str]): Cell class -> ROI class.

    Returns:
        dict: ``images``, ``annotations`` (empty), ``categories``,
        ``roi_classes`` (:data:`ROI_CLASSES`) and ``cell_to_roi_class``.
    """
    return dict(images=[], annotations=[],
                categories=[dict(id=i + 1, name=c)
                            for i, c in enumerate(cell_classes)],
                roi_classes=list(ROI_CLASSES),
                cell_to_roi_class=dict(mapping))


def rois_per_class(coco: Dict) -> Dict[str, int]:
    """Number of ROIs of every ROI class of an annotation dict.

    Args:
        coco (dict): Annotation dict of :func:`roi_coco`.

    Returns:
        dict[str, int]: ``{ROI class: ROIs}`` in :data:`ROI_CLASSES` order.
    """
    rois = {r: 0 for r in ROI_CLASSES}
    for img in coco['images']:
        rois[img['roi_label']] += 1
    return rois


__all__ = ['roi_label_of', 'balanced_labels', 'roi_coco', 'rois_per_class']
