"""SSD prior boxes of LD-WSCCD Eq. (4) (S_min 0.2, S_max 0.9) against
hand-computed scales, sizes and centres."""
import math

import pytest
import torch
from mmdet.registry import TASK_UTILS

from cervdet.models.task_modules import SSDPriorBoxGenerator, ssd_prior_scales

SSD512 = dict(strides=[8, 16, 32, 64, 128, 256, 512],
              ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
              input_size=512)


def test_eq4_scales_by_hand():
    # m = 7: s_k = 0.2 + 0.7 / 6 (k - 1); s_8 extends the same step
    expected = [0.2, 0.31667, 0.43333, 0.55, 0.66667, 0.78333, 0.9, 1.01667]
    assert ssd_prior_scales(0.2, 0.9, 7) == pytest.approx(expected, abs=1e-5)
    # m = 4: step 0.7 / 3
    assert ssd_prior_scales(0.2, 0.9, 4) == pytest.approx(
        [0.2, 0.43333, 0.66667, 0.9, 1.13333], abs=1e-5)
    with pytest.raises(ValueError, match='m >= 2'):
        ssd_prior_scales(0.2, 0.9, 1)
    with pytest.raises(ValueError, match='S_min < S_max'):
        ssd_prior_scales(0.9, 0.2, 4)


def test_prior_sizes_and_ratios_of_every_level():
    gen = TASK_UTILS.build(dict(type='SSDPriorBoxGenerator', **SSD512))
    assert isinstance(gen, SSDPriorBoxGenerator)
    assert gen.num_base_priors == [4, 6, 6, 6, 6, 4, 4]
    scales = ssd_prior_scales(0.2, 0.9, 7)
    for k, base in enumerate(gen.base_anchors):
        s = scales[k] * 512
        s_extra = math.sqrt(scales[k] * scales[k + 1]) * 512
        wh = sorted((round(float(w), 3), round(float(h), 3))
                    for w, h in base[:, 2:] - base[:, :2])
        expected = [(s, s), (s_extra, s_extra)]
        for a in SSD512['ratios'][k]:
            # w = s sqrt(a), h = s / sqrt(a), and the transpose
            expected += [(s * math.sqrt(a), s / math.sqrt(a)),
                         (s / math.sqrt(a), s * math.sqrt(a))]
        assert torch.allclose(torch.tensor(wh), torch.tensor(sorted(expected)),
                              atol=1e-3)
        # centred on the cell centre (stride / 2 of cell 0)
        centre = (base[:, :2] + base[:, 2:]) / 2
        assert torch.allclose(centre, torch.full_like(centre,
                                                      gen.strides[k][0] / 2))
    # level 0 by hand: 0.2 * 512 = 102.4; sqrt(0.2 * 0.31667) * 512 = 128.85
    sides = sorted(float(w) for w in (gen.base_anchors[0][:, 2] -
                                      gen.base_anchors[0][:, 0]))
    assert sides == pytest.approx([102.4 / math.sqrt(2), 102.4, 128.85,
                                   102.4 * math.sqrt(2)], abs=0.01)


def test_grid_centres_are_eq4_cell_centres():
    gen = SSDPriorBoxGenerator(**SSD512)
    sizes = [(512 // s, 512 // s) for s in SSD512['strides']]
    priors = gen.grid_priors(sizes, device='cpu')
    assert sum(len(p) for p in priors) == 24564  # SSD512's prior count
    for k, (p, (f, _)) in enumerate(zip(priors, sizes)):
        centres = ((p[:, :2] + p[:, 2:]) / 2).view(f, f, -1, 2)
        i, j = torch.meshgrid(torch.arange(f), torch.arange(f),
                              indexing='ij')
        # ((j + 0.5) / f_k, (i + 0.5) / f_k) of the input side
        assert torch.allclose(centres[..., 0],
                              ((j + 0.5) / f * 512)[..., None].float())
        assert torch.allclose(centres[..., 1],
                              ((i + 0.5) / f * 512)[..., None].float())


def test_bad_config():
    with pytest.raises(ValueError, match='one ratio list per level'):
        SSDPriorBoxGenerator(strides=[8, 16], ratios=[[2]])
    assert '102.4' in repr(SSDPriorBoxGenerator(**SSD512))
