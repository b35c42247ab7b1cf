"""DINOProjectionHead: shapes, the weight-normalised last layer (fixed norm
with norm_last_layer=True, learnable gain otherwise)."""
import pytest
import torch
from mmengine.registry import DefaultScope

from cervdet.models.heads import (
    DINOProjectionHead,
    WeightNormLinear,
    weight_norm_weight,
)


def test_weight_norm_weight_rows():
    v = torch.tensor([[3., 4.], [0., 2.]])
    g = torch.tensor([[1.], [5.]])
    torch.testing.assert_close(weight_norm_weight(v, g),
                               torch.tensor([[.6, .8], [0., 5.]]))


def test_registered_and_shapes():
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MODELS.build(dict(type='DINOProjectionHead', in_channels=16,
                                 out_channels=32, hidden_channels=24,
                                 bottleneck_channels=8))
    head.init_weights()
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 32)
    # l2-normalised bottleneck times unit-norm rows: cosine similarities
    assert out.abs().max() <= 1. + 1e-5
    assert head((torch.randn(3, 16), )).shape == (3, 32)
    names = {n for n, _ in head.named_parameters()}
    assert {'last_layer.weight_v', 'last_layer.weight_g'} <= names


def test_norm_fixed_when_norm_last_layer():
    torch.manual_seed(0)
    head = DINOProjectionHead(8, 16, hidden_channels=12, bottleneck_channels=4,
                              norm_last_layer=True)
    assert not head.last_layer.weight_g.requires_grad
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad],
                          lr=1.)
    v_before = head.last_layer.weight_v.detach().clone()
    head(torch.randn(6, 8)).pow(2).sum().backward()
    assert head.last_layer.weight_g.grad is None
    opt.step()
    assert not torch.equal(head.last_layer.weight_v, v_before)
    row_norms = head.last_layer.weight.norm(dim=1)
    torch.testing.assert_close(row_norms, torch.ones(16))
    torch.testing.assert_close(head.last_layer.weight_g, torch.ones(16, 1))


def test_gain_learnable_otherwise():
    head = DINOProjectionHead(8, 16, hidden_channels=12, bottleneck_channels=4,
                              norm_last_layer=False, use_bn=True)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())
    head(torch.randn(6, 8)).pow(2).sum().backward()
    assert head.last_layer.weight_g.grad is not None
    assert head.last_layer.weight_g.grad.abs().sum() > 0


def test_layers_and_errors():
    one = DINOProjectionHead(8, 16, num_layers=1, bottleneck_channels=4)
    assert isinstance(one.mlp, torch.nn.Linear)
    three = DINOProjectionHead(8, 16, hidden_channels=12,
                               bottleneck_channels=4)
    assert sum(isinstance(m, torch.nn.Linear) for m in three.mlp) == 3
    with pytest.raises(ValueError, match='num_layers'):
        DINOProjectionHead(8, 16, num_layers=0)
    with pytest.raises(ValueError, match='in_channels'):
        three(torch.randn(2, 9))
    lin = WeightNormLinear(4, 3)
    assert lin(torch.randn(2, 4)).shape == (2, 3)
