"""FGD masks, attention and losses against hand-computed values."""
import math

import pytest
import torch

from cervdet.models.losses import (
    FGDLoss,
    fgd_attention,
    fgd_attention_loss,
    fgd_feature_loss,
    fgd_global_loss,
    fgd_masks,
)


def _reference_masks(gt_bboxes, batch_input_shape, feat_shape):
    """Cell by cell: the definition written out with Python loops."""
    H, W = feat_shape
    in_h, in_w = batch_input_shape
    fg = torch.zeros(len(gt_bboxes), H, W)
    for b, boxes in enumerate(gt_bboxes):
        for x1, y1, x2, y2 in boxes.tolist():
            c0 = min(max(math.floor(x1 * W / in_w), 0), W - 1)
            r0 = min(max(math.floor(y1 * H / in_h), 0), H - 1)
            c1 = max(min(max(math.ceil(x2 * W / in_w), 1), W), c0 + 1)
            r1 = max(min(max(math.ceil(y2 * H / in_h), 1), H), r0 + 1)
            w = 1.0 / ((r1 - r0) * (c1 - c0))
            for r in range(r0, r1):
                for c in range(c0, c1):
                    fg[b, r, c] = max(fg[b, r, c].item(), w)
    bg = (fg == 0).float()
    for b in range(len(gt_bboxes)):
        if bg[b].sum() > 0:
            bg[b] /= bg[b].sum()
    return fg, bg


# ------------------------------------------------------------------ masks --
def test_mask_one_box_fg_weight_and_background_share():
    # 32x32 input, 4x4 feature (stride 8): box covers rows 0, cols 0-1.
    fg, bg = fgd_masks([torch.tensor([[0., 0., 16., 8.]])], (32, 32), (4, 4))
    expected = torch.zeros(1, 4, 4)
    expected[0, 0, :2] = 0.5
    assert torch.equal(fg, expected)
    assert torch.allclose(bg[0, 0, :2], torch.zeros(2))
    assert torch.allclose(bg[0][fg[0] == 0], torch.full((14, ), 1 / 14))
    assert bg.sum().item() == pytest.approx(1.0)


def test_mask_fractional_box_covers_every_overlapped_cell():
    # (4, 4, 12, 12) at stride 8 overlaps cells rows 0-1, cols 0-1.
    fg, _ = fgd_masks([torch.tensor([[4., 4., 12., 12.]])], (32, 32), (4, 4))
    assert torch.allclose(fg[0, :2, :2], torch.full((2, 2), 0.25))
    assert fg[0, 2:].sum() == 0 and fg[0, :, 2:].sum() == 0


def test_mask_overlap_keeps_the_largest_weight():
    boxes = torch.tensor([[0., 0., 32., 32.], [8., 8., 16., 16.]])
    fg, bg = fgd_masks([boxes], (32, 32), (4, 4))
    expected = torch.full((1, 4, 4), 1 / 16)
    expected[0, 1, 1] = 1.0  # the small box wins where they overlap
    assert torch.allclose(fg, expected)
    assert bg.sum() == 0  # no background left


def test_mask_uses_padded_batch_shape_and_rows_are_y():
    # A 32x32 image padded to 32x64: the feature map (4x8) covers the
    # padded input. Box in the image's right half -> column 3, row 0..1.
    boxes = torch.tensor([[24., 0., 32., 16.]])
    fg, _ = fgd_masks([boxes], (32, 64), (4, 8))
    nz = fg[0].nonzero().tolist()
    assert nz == [[0, 3], [1, 3]]
    assert torch.allclose(fg[0, :2, 3], torch.full((2, ), 0.5))


def test_mask_empty_images_are_all_background():
    boxes = [torch.zeros(0, 4), torch.tensor([[0., 0., 8., 8.]])]
    fg, bg = fgd_masks(boxes, (32, 32), (4, 4))
    assert fg[0].sum() == 0
    assert torch.allclose(bg[0], torch.full((4, 4), 1 / 16))
    assert fg[1, 0, 0] == 1.0 and bg[1, 0, 0] == 0
    assert torch.allclose(bg[1].sum(), torch.tensor(1.0))
    # and a batch without any box
    fg, bg = fgd_masks([torch.zeros(0, 4)] * 2, (32, 32), (2, 3))
    assert fg.shape == (2, 2, 3) and fg.sum() == 0
    assert torch.allclose(bg, torch.full((2, 2, 3), 1 / 6))


def test_mask_degenerate_and_out_of_range_boxes_mark_one_cell():
    boxes = torch.tensor([[9., 9., 9., 9.],  # zero size
                          [40., 40., 50., 50.]])  # beyond the input
    fg, _ = fgd_masks([boxes], (32, 32), (4, 4))
    assert fg[0, 1, 1] == 1.0 and fg[0, 3, 3] == 1.0
    assert (fg > 0).sum() == 2


def test_mask_matches_cell_by_cell_definition_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    in_shape, feat = (100, 140), (13, 18)
    gt = []
    for n in (0, 1, 7, 40):
        xy = torch.rand(n, 2, generator=g) * torch.tensor([140., 100.])
        wh = torch.rand(n, 2, generator=g) * 40 + 1
        gt.append(torch.cat([xy, xy + wh], 1))
    fg, bg = fgd_masks(gt, in_shape, feat)
    ref_fg, ref_bg = _reference_masks(gt, in_shape, feat)
    assert torch.allclose(fg, ref_fg)
    assert torch.allclose(bg, ref_bg)


def test_mask_matches_definition_for_every_box_size():
    # Every height x width from 1 cell to the whole map (non powers of two),
    # heavily overlapping, on a 17 x 33 map: the sparse-table reduction must
    # give the brute-force answer.
    g = torch.Generator().manual_seed(1)
    H, W = 17, 33
    hs = torch.arange(1, H + 1).repeat_interleave(W)
    ws = torch.arange(1, W + 1).repeat(H)
    y0 = (torch.rand(hs.numel(), generator=g) * (H - hs + 1)).floor()
    x0 = (torch.rand(ws.numel(), generator=g) * (W - ws + 1)).floor()
    boxes = torch.stack([x0, y0, x0 + ws, y0 + hs], 1).float()
    gt = [boxes[::7], boxes[3::11], torch.zeros(0, 4)]
    fg, bg = fgd_masks(gt, (H, W), (H, W))
    ref_fg, ref_bg = _reference_masks(gt, (H, W), (H, W))
    assert torch.allclose(fg, ref_fg)
    assert torch.allclose(bg, ref_bg)


def test_mask_accepts_box_structures():
    from mmdet.structures.bbox import HorizontalBoxes
    boxes = torch.tensor([[0., 0., 16., 8.]])
    fg1, _ = fgd_masks([HorizontalBoxes(boxes)], (32, 32), (4, 4))
    fg2, _ = fgd_masks([boxes], (32, 32), (4, 4))
    assert torch.equal(fg1, fg2)


# -------------------------------------------------------------- attention --
def test_attention_sums_and_hand_values():
    torch.manual_seed(0)
    feat = torch.randn(3, 5, 4, 6)
    spatial, channel = fgd_attention(feat, 0.5)
    assert spatial.shape == (3, 4, 6) and channel.shape == (3, 5)
    assert torch.allclose(spatial.sum((1, 2)), torch.full((3, ), 24.))
    assert torch.allclose(channel.sum(1), torch.full((3, ), 5.))

    # By hand: C=2, H=1, W=2, F = [[1, -3], [3, 1]] (channel x position).
    feat = torch.tensor([[[[1., -3.]], [[3., 1.]]]])
    spatial, channel = fgd_attention(feat, 0.5)
    # mean_c |F| = [2, 2] -> uniform: A_S = 2 * 0.5 = [1, 1]
    assert torch.allclose(spatial, torch.ones(1, 1, 2))
    # mean_hw |F| = [2, 2] -> A_C = [1, 1]; make channels differ:
    feat = torch.tensor([[[[1., 1.]], [[2., 2.]]]])
    spatial, channel = fgd_attention(feat, 0.5)
    e1, e2 = math.exp(1 / 0.5), math.exp(2 / 0.5)
    assert torch.allclose(
        channel, torch.tensor([[2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)]]))


# ----------------------------------------------------------------- losses --
def _loss(**kw):
    kw.setdefault('lambda_fgd', 0.0)
    return FGDLoss(2, 2, **kw)


def test_feature_and_attention_loss_by_hand_uniform_attention():
    # Teacher all ones, student zeros: A_S = A_C = 1 for the teacher.
    # One box covers cell (0, 0) of a 2x2 map (weight 1); the other three
    # cells are background (1/3 each). (F_T - F_S)^2 summed over 2 channels
    # = 2 per cell -> L_fg = 2, L_bg = 3 * 2 / 3 = 2.
    t = torch.ones(1, 2, 2, 2)
    s = torch.zeros(1, 2, 2, 2, requires_grad=True)
    boxes = [torch.tensor([[0., 0., 8., 8.]])]
    loss = _loss(alpha_fgd=0.1, beta_fgd=0.01, gamma_fgd=1.0)
    terms = loss(s, t, boxes, (16, 16), return_components=True)
    assert terms['loss_fg'].item() == pytest.approx(0.1 * 2)
    assert terms['loss_bg'].item() == pytest.approx(0.01 * 2)
    # student zeros: uniform attention too -> attention loss 0
    assert terms['loss_at'].item() == pytest.approx(0.0)
    assert 'loss_global' not in terms
    total = loss(s, t, boxes, (16, 16))
    assert total.item() == pytest.approx(0.22)


def test_feature_and_attention_loss_by_hand_nonuniform():
    # C=1, H=1, W=2, T=1. Teacher F_T = [2, 0]; student F_S = [1, 1].
    # Teacher A_S = 2 * softmax([2, 0]) = 2 * [e^2, 1] / (e^2 + 1); A_C = 1.
    # Student A_S = [1, 1]; A_C = 1.
    # Box on cell 0 (weight 1); cell 1 background (weight 1).
    # L_fg = A_S_t[0] * (2 - 1)^2 ; L_bg = A_S_t[1] * (0 - 1)^2
    # L_at = |A_S_t[0] - 1| + |A_S_t[1] - 1| + |1 - 1|
    t = torch.tensor([[[[2., 0.]]]])
    s = torch.tensor([[[[1., 1.]]]])
    e = math.exp(2)
    a0, a1 = 2 * e / (e + 1), 2 / (e + 1)
    loss = FGDLoss(1, 1, temp=1.0, alpha_fgd=1.0, beta_fgd=1.0,
                   gamma_fgd=1.0, lambda_fgd=0.0)
    terms = loss(s, t, [torch.tensor([[0., 0., 8., 8.]])], (8, 16),
                 return_components=True)
    assert terms['loss_fg'].item() == pytest.approx(a0)
    assert terms['loss_bg'].item() == pytest.approx(a1)
    assert terms['loss_at'].item() == pytest.approx(abs(a0 - 1) + abs(a1 - 1))
    # batch mean: the same image twice gives the same values
    terms2 = loss(s.repeat(2, 1, 1, 1), t.repeat(2, 1, 1, 1),
                  [torch.tensor([[0., 0., 8., 8.]])] * 2, (8, 16),
                  return_components=True)
    for k in terms:
        assert terms2[k].item() == pytest.approx(terms[k].item())


def test_pure_functions_match_module_terms():
    torch.manual_seed(1)
    s, t = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    boxes = [torch.tensor([[3., 4., 20., 30.]]), torch.zeros(0, 4)]
    fg, bg = fgd_masks(boxes, (40, 48), (5, 6))
    st, ct = fgd_attention(t, 0.5)
    ss, cs = fgd_attention(s, 0.5)
    lfg, lbg = fgd_feature_loss(s, t, fg, bg, st, ct)
    # explicit sum of Eq. (6) terms
    w = st[:, None] * ct[:, :, None, None] * (t - s).pow(2)
    assert lfg.item() == pytest.approx((w * fg[:, None]).sum().item() / 2,
                                       rel=1e-5)
    assert lbg.item() == pytest.approx((w * bg[:, None]).sum().item() / 2,
                                       rel=1e-5)
    lat = fgd_attention_loss(ss, cs, st, ct)
    loss = FGDLoss(4, 4, alpha_fgd=2.0, beta_fgd=3.0, gamma_fgd=5.0,
                   lambda_fgd=0.0, loss_weight=0.5)
    terms = loss(s, t, boxes, (40, 48), return_components=True)
    assert terms['loss_fg'].item() == pytest.approx(0.5 * 2 * lfg.item())
    assert terms['loss_bg'].item() == pytest.approx(0.5 * 3 * lbg.item())
    assert terms['loss_at'].item() == pytest.approx(0.5 * 5 * lat.item())


def test_global_loss_starts_as_plain_feature_mse():
    # GcBlocks' last conv is zero-initialised: R(F) = F at the start, so
    # L_global = sum((F_T - F_S)^2) / B = 8 for ones vs zeros (C=2, 2x2).
    loss = FGDLoss(2, 2, alpha_fgd=0, beta_fgd=0, gamma_fgd=0, lambda_fgd=0.5)
    terms = loss(torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2),
                 [torch.zeros(0, 4)], (16, 16), return_components=True)
    assert terms['loss_global'].item() == pytest.approx(0.5 * 8)
    assert fgd_global_loss(torch.zeros(2, 1, 1, 1),
                           torch.ones(2, 1, 1, 1)).item() == 1.0


def test_gradients_reach_student_and_fgd_modules_not_teacher():
    torch.manual_seed(0)
    loss = FGDLoss(3, 4)  # align conv 3 -> 4, GcBlocks on
    s = torch.randn(2, 3, 6, 6, requires_grad=True)
    t = torch.randn(2, 4, 6, 6, requires_grad=True)
    boxes = [torch.tensor([[0., 0., 20., 20.]]), torch.zeros(0, 4)]
    out = loss(s, t, boxes, (48, 48))
    out.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # the teacher feature is detached
    assert loss.align.weight.grad.abs().sum() > 0
    # the zero-initialised last GcBlock conv gets a gradient on both sides
    assert loss.global_s.channel_add_conv[-1].weight.grad is not None
    assert loss.global_t.channel_add_conv[-1].weight.grad is not None


def test_lambda_zero_builds_no_global_blocks():
    loss = FGDLoss(8, 8, lambda_fgd=0)
    assert loss.global_s is None and loss.global_t is None
    assert isinstance(loss.align, torch.nn.Identity)
    assert sum(p.numel() for p in loss.parameters()) == 0


def test_clear_errors_on_bad_inputs():
    loss = FGDLoss(4, 8)
    boxes = [torch.zeros(0, 4)]
    with pytest.raises(ValueError, match='student_channels'):
        loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 8, 4, 4), boxes, (32, 32))
    with pytest.raises(ValueError, match='teacher_channels'):
        loss(torch.zeros(1, 4, 4, 4), torch.zeros(1, 6, 4, 4), boxes, (32, 32))
    with pytest.raises(ValueError, match='same batch and spatial size'):
        loss(torch.zeros(1, 4, 4, 4), torch.zeros(1, 8, 2, 2), boxes, (32, 32))
    with pytest.raises(ValueError, match='ground-truth box tensors'):
        loss(torch.zeros(2, 4, 4, 4), torch.zeros(2, 8, 4, 4), boxes, (32, 32))
    with pytest.raises(ValueError, match=r'Tensor\[n, 4\]'):
        fgd_masks([torch.zeros(3, 5)], (32, 32), (4, 4))
    with pytest.raises(ValueError, match='temp'):
        FGDLoss(4, 4, temp=0)
    with pytest.raises(ValueError, match='student_channels'):
        FGDLoss(0, 4)


def test_registered_in_mmdet_models():
    from mmdet.registry import MODELS
    loss = MODELS.build(dict(type='FGDLoss', student_channels=2,
                             teacher_channels=4, lambda_fgd=0))
    assert isinstance(loss, FGDLoss) and loss.align.out_channels == 4


# ------------------------------------------- LD-WSCCD Eq. (9)-(14) ------
def test_ld_wsccd_binary_mask_eq9():
    boxes = [torch.tensor([[0., 0., 16., 16.]]), torch.zeros(0, 4)]
    fg, bg = fgd_masks(boxes, (64, 64), (4, 4), scale_mask=False)
    expected = torch.zeros(2, 4, 4)
    expected[0, 0, 0] = 1.  # the one cell inside the box: M = 1
    assert torch.equal(fg, expected) and torch.equal(bg, 1. - expected)
    # FGD's scale mask on the same box: 1/area inside, 1/N_bg outside
    fg_s, bg_s = fgd_masks(boxes, (64, 64), (4, 4))
    assert fg_s[0, 0, 0] == 1. and bg_s[0, 0, 1] == pytest.approx(1 / 15)


def test_ld_wsccd_feature_loss_eq12_by_hand():
    # teacher 1 everywhere (uniform attention: A^S = A^C = 1), student 0:
    # every squared difference is 1; C = 2, H = W = 2, one foreground cell
    loss = FGDLoss(2, 2, alpha_fgd=0.5, beta_fgd=0.25, gamma_fgd=1.0,
                   lambda_fgd=0., scale_mask=False,
                   attention_reduction='mean')
    t, s = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    terms = loss(s, t, [torch.tensor([[0., 0., 8., 8.]])], (16, 16),
                 return_components=True)
    assert set(terms) == {'loss_fg', 'loss_bg', 'loss_at'}  # Eq. (14)
    # Eq. (12): alpha * 1 cell * 2 channels, beta * 3 cells * 2 channels
    assert terms['loss_fg'].item() == pytest.approx(0.5 * 2)
    assert terms['loss_bg'].item() == pytest.approx(0.25 * 6)
    # a zero student has uniform attention too: L_att = 0
    assert terms['loss_at'].item() == pytest.approx(0.)
    # FGD's scale mask instead: fg area 1, bg share 1/3 per cell
    fgd = FGDLoss(2, 2, alpha_fgd=0.5, beta_fgd=0.25, lambda_fgd=0.)
    terms = fgd(s, t, [torch.tensor([[0., 0., 8., 8.]])], (16, 16),
                return_components=True)
    assert terms['loss_fg'].item() == pytest.approx(0.5 * 2)
    assert terms['loss_bg'].item() == pytest.approx(0.25 * 2)


def test_ld_wsccd_attention_loss_eq13_is_a_mean_absolute_error():
    spatial_t = torch.ones(1, 2, 2)
    spatial_s = torch.tensor([[[2., 0.], [1., 1.]]])
    channel_t = torch.tensor([[1., 1.]])
    channel_s = torch.tensor([[1.5, 0.5]])
    # Eq. (13): mean |.| over H*W (2/4) + mean |.| over C (1/2)
    mean = fgd_attention_loss(spatial_s, channel_s, spatial_t, channel_t,
                              reduction='mean')
    assert mean.item() == pytest.approx(0.5 + 0.5)
    # FGD's sum: 2 + 1
    total = fgd_attention_loss(spatial_s, channel_s, spatial_t, channel_t)
    assert total.item() == pytest.approx(3.)
    # batch: the mean over images
    two = fgd_attention_loss(spatial_s.repeat(2, 1, 1),
                             channel_s.repeat(2, 1),
                             torch.cat([spatial_t, spatial_s]),
                             torch.cat([channel_t, channel_s]),
                             reduction='mean')
    assert two.item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match='reduction'):
        fgd_attention_loss(spatial_s, channel_s, spatial_t, channel_t,
                           reduction='max')
    with pytest.raises(ValueError, match='attention_reduction'):
        FGDLoss(2, 2, attention_reduction='max')


def test_ld_wsccd_preset_is_eq9_to_14():
    from mmengine.config import Config

    from conftest import ROOT
    presets = Config.fromfile(
        str(ROOT / 'configs' / 'fgd' / '_base_' / 'fgd_presets.py'))
    loss = FGDLoss(student_channels=4, teacher_channels=8,
                   **{k: v for k, v in presets.ld_wsccd.items()
                      if k != 'type'})
    assert not loss.scale_mask and loss.attention_reduction == 'mean'
    assert loss.global_s is None and loss.lambda_fgd == 0
    fgd = FGDLoss(4, 8, **{k: v for k, v in presets.fgd_retinanet.items()
                           if k != 'type'})
    assert fgd.scale_mask and fgd.attention_reduction == 'sum'
    assert fgd.global_s is not None
