"""Pooled backbone features: CNN maps, tokens, ViT class tokens."""
import pytest
import torch

from cervdet.models.utils import pool_backbone_output


def test_pool_backbone_output_shapes():
    assert pool_backbone_output((torch.ones(2, 5, 3, 3), )).shape == (2, 5)
    assert pool_backbone_output((torch.ones(2, 5), )).shape == (2, 5)
    assert pool_backbone_output(torch.ones(2, 7, 5)).shape == (2, 5)
    with pytest.raises(ValueError, match='cannot pool'):
        pool_backbone_output(torch.ones(5))


def test_pool_backbone_output_values():
    x = torch.arange(8.).reshape(1, 2, 2, 2)
    assert pool_backbone_output((torch.zeros(1, 2, 4, 4), x)).tolist() == \
        [[1.5, 5.5]]
    tokens = torch.tensor([[[0., 2.], [2., 4.]]])  # [N, L, C]
    assert pool_backbone_output(tokens).tolist() == [[1., 3.]]
    cls_token = torch.ones(3, 4)
    assert pool_backbone_output(((None, cls_token), )) is cls_token
