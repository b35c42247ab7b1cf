"""Tests of cervdet.datasets.transforms.PackROIBagInputs (pixel mode)."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import TRANSFORMS

from cervdet.datasets.transforms import PackROIBagInputs

BOXES = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]], np.float32)


def test_registered():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert isinstance(TRANSFORMS.build(dict(type='PackROIBagInputs')),
                          PackROIBagInputs)


def test_pack_pixel_mode_and_unlabelled():
    imgs = np.random.default_rng(0).integers(0, 256, (3, 3, 8, 8), np.uint8)
    packed = PackROIBagInputs()(dict(cell_imgs=imgs, cell_bboxes=BOXES,
                                     roi_label=-1, cell_scores=np.ones(3)))
    assert packed['inputs'].dtype == torch.uint8
    assert packed['inputs'].shape == (3, 3, 8, 8)
    sample = packed['data_samples']
    assert 'gt_label' not in sample
    assert sample.cell_labels.tolist() == [-1, -1, -1]
    assert sample.cell_det_scores.shape == (3, )
    with pytest.raises(ValueError, match='3 cell inputs but 2 cell_bboxes'):
        PackROIBagInputs()(dict(cell_imgs=imgs, cell_bboxes=BOXES[:2]))
    with pytest.raises(KeyError, match='CropCells'):
        PackROIBagInputs()(dict(cell_bboxes=BOXES))
