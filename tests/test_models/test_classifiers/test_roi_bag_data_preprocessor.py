"""Tests of the ROI bag collation (padding, masks, normalisation)."""
import pytest
import torch
from mmpretrain.structures import DataSample

from cervdet.models.classifiers import ROIBagDataPreprocessor


def _samples(n, path='roi_{}.png'):
    return [DataSample(metainfo=dict(img_path=path.format(i), num_cells=k))
            .set_gt_label(0) for i, k in enumerate(n)]


def test_pixel_mode_pads_normalises_and_flips():
    pre = ROIBagDataPreprocessor(mean=[1., 2., 3.], std=[2., 2., 2.],
                                 to_rgb=True)
    a = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    a[:, 0] = 10  # BGR: blue = 10
    b = torch.full((3, 3, 4, 4), 7, dtype=torch.uint8)
    out = pre(dict(inputs=[a, b], data_samples=_samples([2, 3])))
    cells, mask = out['inputs']['cells'], out['inputs']['mask']
    assert cells.shape == (2, 3, 3, 4, 4) and cells.dtype == torch.float32
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    # after BGR -> RGB the blue 10 is channel 2: (10 - 3) / 2
    assert torch.allclose(cells[0, 0, 2], torch.full((4, 4), 3.5))
    assert torch.allclose(cells[0, 0, 0], torch.full((4, 4), -0.5))
    assert (cells[0, 2] == 0).all()  # padding
    assert torch.allclose(cells[1, :, 1], torch.full((3, 4, 4), 2.5))
    assert len(out['data_samples']) == 2


def test_cached_mode_with_and_without_maps():
    pre = ROIBagDataPreprocessor()
    bags = [dict(pooled=torch.ones(1, 5).half(), maps=torch.ones(1, 5, 2, 2)),
            dict(pooled=torch.full((4, 5), 2.), maps=torch.ones(4, 5, 2, 2))]
    out = pre(dict(inputs=bags, data_samples=_samples([1, 4])))['inputs']
    assert out['pooled'].shape == (2, 4, 5)
    assert out['pooled'].dtype == torch.float32
    assert out['maps'].shape == (2, 4, 5, 2, 2)
    assert out['mask'].sum(1).tolist() == [1, 4]
    assert (out['pooled'][0, 1:] == 0).all()
    no_maps = [dict(pooled=b['pooled']) for b in bags]
    out = pre(dict(inputs=no_maps, data_samples=None))['inputs']
    assert 'maps' not in out and out['pooled'].shape == (2, 4, 5)
    # an already stacked batch (default_collate) is accepted
    out = pre(dict(inputs=dict(pooled=torch.ones(2, 3, 5))))['inputs']
    assert out['mask'].all() and out['pooled'].shape == (2, 3, 5)


def test_errors_name_the_roi():
    pre = ROIBagDataPreprocessor()
    bags = [dict(pooled=torch.ones(2, 5)), dict(pooled=torch.ones(0, 5))]
    with pytest.raises(ValueError, match=r'roi_1\.png.*empty_roi'):
        pre(dict(inputs=bags, data_samples=_samples([2, 0])))
    bags = [dict(pooled=torch.ones(2, 5), maps=torch.ones(2, 5, 1, 1)),
            dict(pooled=torch.ones(1, 5))]
    with pytest.raises(ValueError, match=r'roi_1\.png.*maps'):
        pre(dict(inputs=bags, data_samples=_samples([2, 1])))
    bags = [dict(pooled=torch.ones(2, 5), maps=torch.ones(3, 5, 1, 1))]
    with pytest.raises(ValueError, match='"maps" has 3 cells'):
        pre(dict(inputs=bags, data_samples=_samples([2])))
    with pytest.raises(ValueError, match='mean and std'):
        ROIBagDataPreprocessor(mean=[1., 2., 3.])


def test_pseudo_collate_outputs_are_accepted():
    from mmengine.dataset import pseudo_collate
    pre = ROIBagDataPreprocessor()
    items = [dict(inputs=dict(pooled=torch.ones(n, 5),
                              maps=torch.ones(n, 5, 2, 2)),
                  data_samples=s) for n, s in zip((2, 3), _samples([2, 3]))]
    batch = pseudo_collate(items)
    assert isinstance(batch['inputs'], dict)  # dict of lists
    out = pre(batch)['inputs']
    assert out['pooled'].shape == (2, 3, 5)
    assert out['maps'].shape == (2, 3, 5, 2, 2)
    assert out['mask'].sum(1).tolist() == [2, 3]
    pixel = pseudo_collate([
        dict(inputs=torch.zeros(n, 3, 4, 4, dtype=torch.uint8),
             data_samples=s) for n, s in zip((1, 2), _samples([1, 2]))])
    out = pre(pixel)['inputs']
    assert out['cells'].shape == (2, 2, 3, 4, 4)
    assert out['mask'].tolist() == [[True, False], [True, True]]
