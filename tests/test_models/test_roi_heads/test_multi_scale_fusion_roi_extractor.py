"""MultiScaleFusionRoIExtractor: the fused multi-scale MIL input of LD-WSCCD
(Sec. III.D): shapes, the sum/concat of per-level pooled lateral features,
gradients to every level, empty RoIs and bad configs."""
import pytest
import torch
from mmcv.ops import RoIAlign
from mmdet.registry import MODELS

from cervdet.models.roi_heads import MultiScaleFusionRoIExtractor

LEVELS = (8, 16, 12)
STRIDES = [4, 8, 16]


def _feats(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, c, size // s, size // s, generator=g,
                             requires_grad=True)
                 for c, s in zip(LEVELS, STRIDES))


def _extractor(fusion='sum'):
    torch.manual_seed(0)
    ext = MODELS.build(dict(
        type='MultiScaleFusionRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=3, sampling_ratio=2),
        in_channels=LEVELS, level_channels=5, featmap_strides=STRIDES,
        fusion=fusion))
    ext.init_weights()
    return ext


ROIS = torch.tensor([[0., 4, 4, 20, 30], [1., 10, 0, 60, 40],
                     [1., 0, 0, 64, 64]])


@pytest.mark.parametrize('fusion', ['sum', 'concat'])
def test_fusion_is_sum_or_concat_of_pooled_laterals(fusion):
    ext = _extractor(fusion)
    feats = _feats()
    out = ext(feats, ROIS)
    per_level = [RoIAlign(3, 1. / s, 2)(conv(f), ROIS) for f, conv, s in
                 zip(feats, ext.lateral_convs, STRIDES)]
    if fusion == 'sum':
        assert out.shape == (3, 5, 3, 3) and ext.out_channels == 5
        assert torch.allclose(out, sum(per_level), atol=1e-6)
    else:
        assert out.shape == (3, 15, 3, 3) and ext.out_channels == 15
        assert torch.allclose(out, torch.cat(per_level, 1), atol=1e-6)
    out.sum().backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    assert all(c.weight.grad.abs().sum() > 0 for c in ext.lateral_convs)


def test_empty_rois_keep_the_graph_and_bad_inputs():
    ext = _extractor()
    feats = _feats()
    out = ext(feats, ROIS[:0])
    assert out.shape == (0, 5, 3, 3) and out.requires_grad
    with pytest.raises(ValueError, match='feature levels'):
        ext(feats[:2], ROIS)
    with pytest.raises(ValueError, match='fusion'):
        MultiScaleFusionRoIExtractor(dict(type='RoIAlign', output_size=3),
                                     LEVELS, 5, STRIDES, fusion='max')
    with pytest.raises(ValueError, match='one in_channels'):
        MultiScaleFusionRoIExtractor(dict(type='RoIAlign', output_size=3),
                                     LEVELS[:2], 5, STRIDES)
