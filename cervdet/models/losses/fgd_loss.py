"""Focal and global feature distillation (FGD) for detectors.

The local ("focal") distillation of LD-WSCCD (Yin et al., IEEE Access 2024),
which follows *Focal and Global Knowledge Distillation for Detectors* (Yang et
al., CVPR 2022). Equation numbers below are those of the FGD paper:

- Eq. (2)-(3): binary foreground mask ``M`` and scale mask ``S`` from the
  ground-truth boxes (:func:`fgd_masks`);
- Eq. (4)-(5): spatial and channel attention of a feature map
  (:func:`fgd_attention`);
- Eq. (6): attention-weighted feature imitation, foreground and background
  apart (:func:`fgd_feature_loss`);
- Eq. (7): attention imitation (:func:`fgd_attention_loss`);
- Eq. (9): global relation loss through GcBlocks (:func:`fgd_global_loss`).

LD-WSCCD's own equations (Sec. III.D.2) are the same terms without FGD's
scale mask and global loss: Eq. (9) a binary ground-truth-box mask ``M``
(``scale_mask=False``), Eq. (10)-(11) the attention above, Eq. (12) the
masked feature imitation summed over ``C, H, W``, Eq. (13) the attention loss
as a mean absolute error (``attention_reduction='mean'``), Eq. (14) ``L_dis =
L_fea + L_att`` (``lambda_fgd=0``): the ``ld_wsccd`` preset of
``configs/fgd/_base_/fgd_presets.py``.

The math lives in small pure functions; :class:`FGDLoss` holds the learnable
parts (the 1x1 align conv and the two GcBlocks) and the loss weights.
"""
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ContextBlock
from mmdet.registry import MODELS
from torch import Tensor


def _box_tensor(boxes) -> Tensor:
    """``Tensor[n, 4]`` from a tensor or an mmdet box structure."""
    if hasattr(boxes, 'tensor'):  # mmdet.structures.bbox.BaseBoxes
        boxes = boxes.tensor
    if not isinstance(boxes, Tensor):
        raise TypeError(
            f'FGD: ground-truth boxes must be Tensor[n, 4] (x1, y1, x2, y2 in '
            f'pixels of the padded batch input), got {type(boxes).__name__}')
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(
            f'FGD: ground-truth boxes must be Tensor[n, 4] (x1, y1, x2, y2), '
            f'got shape {tuple(boxes.shape)}')
    return boxes


def _floor_log2(x: Tensor) -> Tensor:
    """``floor(log2(x))`` of positive integers (exact: via the exponent)."""
    return torch.frexp(x.float())[1] - 1


def max_over_rectangles(num_imgs: int, height: int, width: int,
                        img_ids: Tensor, lo: Tensor, hi: Tensor,
                        values: Tensor) -> Tensor:
    """Per cell, the largest value of the rectangles covering it.

    Offline 2-D "range chmax, point query" with a sparse table: a rectangle
    ``[y0, y1) x [x0, x1)`` is the union of four (overlapping) blocks of
    ``2**ky x 2**kx`` cells, ``ky = floor(log2(y1 - y0))``, anchored at its
    corners; each block is one ``scatter_reduce(amax)`` entry in a table
    ``T[b, ky, kx, y, x]``. Pushing every level down to the two half blocks
    it covers (first along ``y``, then ``x``) leaves the answer at level
    ``(0, 0)``. The cost is ``O(n + B * Ky * Kx * H * W)``: independent of the
    boxes' sizes and overlaps, without a Python loop over boxes (the loops
    run over the ``log2`` levels).

    Args:
        num_imgs (int): ``B``.
        height (int): ``H``.
        width (int): ``W``.
        img_ids (Tensor): ``Tensor[n]`` image of each rectangle.
        lo (Tensor): ``Tensor[n, 2]`` integer ``(x0, y0)`` (first cell).
        hi (Tensor): ``Tensor[n, 2]`` integer ``(x1, y1)`` (one past the
            last cell); ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
        values (Tensor): ``Tensor[n]`` non-negative values.

    Returns:
        Tensor: ``Tensor[B, H, W]``, 0 where no rectangle covers a cell.
    """
    k = _floor_log2(hi - lo)  # [n, 2] block size exponents (x, y)
    kx, ky = k[:, 0], k[:, 1]
    levels_x, levels_y = (int(v) + 1 for v in k.max(0).values)
    table = torch.zeros(num_imgs, levels_y, levels_x, height, width,
                        dtype=values.dtype, device=values.device)
    far = hi - torch.pow(2, k)  # block anchors at the far corner
    xs = torch.stack([lo[:, 0], far[:, 0]])  # [2, n] block columns
    ys = torch.stack([lo[:, 1], far[:, 1]])  # [2, n] block rows
    base = (img_ids * levels_y + ky) * levels_x + kx
    flat = ((base[None, None] * height + ys[:, None]) * width +
            xs[None, :]).reshape(-1)
    table.view(-1).scatter_reduce_(0, flat, values.repeat(4), reduce='amax',
                                   include_self=True)
    for lvl in range(levels_y - 1, 0, -1):  # rows: 2**lvl -> 2 x 2**(lvl-1)
        half, src, dst = 2**(lvl - 1), table[:, lvl], table[:, lvl - 1]
        torch.maximum(dst, src, out=dst)
        top = dst[:, :, half:]
        torch.maximum(top, src[:, :, :height - half], out=top)
    rows = table[:, 0]  # [B, Kx, H, W]
    for lvl in range(levels_x - 1, 0, -1):  # columns, the same way
        half, src, dst = 2**(lvl - 1), rows[:, lvl], rows[:, lvl - 1]
        torch.maximum(dst, src, out=dst)
        right = dst[:, :, half:]
        torch.maximum(right, src[:, :, :width - half], out=right)
    return rows[:, 0].contiguous()


def fgd_masks(gt_bboxes: Sequence[Tensor],
              batch_input_shape: Tuple[int, int],
              feat_shape: Tuple[int, int],
              device: Union[torch.device, str, None] = None,
              scale_mask: bool = True) -> Tuple[Tensor, Tensor]:
    """Foreground and background weight maps of FGD, Eq. (2)-(3).

    With ``scale_mask=False`` the maps are LD-WSCCD's binary mask, Eq. (9):
    ``fg = M`` (1 in every cell a box covers) and ``bg = 1 - M``, without
    FGD's scale normalisation.

    A box ``(x1, y1, x2, y2)`` in pixels of the padded batch input (the
    feature map covers the padded input, so boxes are scaled by
    ``feat / batch_input_shape``) covers the feature cells it overlaps:
    rows ``floor(y1 * H / H_in)`` to ``ceil(y2 * H / H_in) - 1`` and the
    same for columns (at least one cell). Each covered cell gets the weight
    ``1 / (h * w)`` of the box (``h * w`` cells); where boxes overlap, the
    largest weight (the smallest box) wins. Cells covered by no box are
    background and share a total weight of 1: ``1 / #background cells``. An
    image without boxes is all background.

    Built without Python loops over boxes (:func:`max_over_rectangles`); the
    cost does not grow with the boxes' sizes or overlaps.

    Differences from the FGD reference code (on purpose): boxes are scaled
    with the padded batch shape (not each image's unpadded ``img_shape``,
    which misplaces boxes in padded images), rows index ``y`` and columns
    ``x`` (the reference swaps them), and the covered range is half-open (the
    reference's inclusive ``ceil`` end adds one cell per side).

    Args:
        gt_bboxes (Sequence[Tensor]): ``B`` tensors ``Tensor[n_i, 4]``,
            ``(x1, y1, x2, y2)`` in pixels of the padded batch input.
        batch_input_shape (tuple[int, int]): ``(H_in, W_in)`` of the padded
            batch input.
        feat_shape (tuple[int, int]): ``(H, W)`` of the feature map.
        device (torch.device | str, optional): Device of the maps. Defaults
            to the device of the boxes.
        scale_mask (bool): FGD's scale mask ``S`` (True) or LD-WSCCD's
            binary mask of Eq. (9) (False).

    Returns:
        tuple[Tensor, Tensor]: ``fg`` and ``bg``, both ``Tensor[B, H, W]``
        float32; ``fg`` holds ``M * S`` and ``bg`` holds ``(1 - M) * S`` of
        Eq. (6) (``M`` and ``1 - M`` with ``scale_mask=False``).
    """
    num_imgs = len(gt_bboxes)
    H, W = int(feat_shape[0]), int(feat_shape[1])
    in_h, in_w = float(batch_input_shape[0]), float(batch_input_shape[1])
    if in_h <= 0 or in_w <= 0 or H <= 0 or W <= 0:
        raise ValueError(f'FGD: batch_input_shape {tuple(batch_input_shape)} '
                         f'and feat_shape {tuple(feat_shape)} must be positive')
    boxes_list = [_box_tensor(b) for b in gt_bboxes]
    if device is None:
        device = boxes_list[0].device if boxes_list else torch.device('cpu')
    counts = [b.shape[0] for b in boxes_list]
    if sum(counts) > 0:
        boxes = torch.cat(boxes_list).to(device=device, dtype=torch.float32)
        img_ids = torch.repeat_interleave(
            torch.arange(num_imgs, device=device),
            torch.tensor(counts, device=device))
        size = torch.tensor([W, H], device=device)
        scaled = boxes.view(-1, 2, 2) * torch.tensor(
            [W / in_w, H / in_h], device=device)
        lo = torch.minimum(scaled[:, 0].floor().long().clamp(min=0), size - 1)
        hi = torch.maximum(torch.minimum(scaled[:, 1].ceil().long(), size),
                           lo + 1)
        # Eq. (3): S = 1 / (H_r * W_r) inside box r (the max where boxes
        # overlap).
        weight = 1.0 / (hi - lo).prod(1).float()
        fg = max_over_rectangles(num_imgs, H, W, img_ids, lo, hi, weight)
    else:
        fg = torch.zeros(num_imgs, H, W, dtype=torch.float32, device=device)
    if not scale_mask:
        # LD-WSCCD Eq. (9): M = 1 inside a ground-truth box, 0 elsewhere
        fg = (fg > 0).float()
        return fg, 1. - fg
    # Eq. (3): S = 1 / N_bg outside all boxes, N_bg = sum(1 - M).
    bg = (fg == 0).float()
    bg = bg / bg.sum(dim=(1, 2), keepdim=True).clamp(min=1.0)
    return fg, bg


def fgd_attention(feat: Tensor, temp: float) -> Tuple[Tensor, Tensor]:
    """Spatial and channel attention of a feature map, Eq. (4)-(5).

    ``A_S = H * W * softmax(mean_c |F| / T)`` (sums to ``H * W`` per image)
    and ``A_C = C * softmax(mean_hw |F| / T)`` (sums to ``C``).

    Args:
        feat (Tensor): ``Tensor[B, C, H, W]``.
        temp (float): Temperature ``T``.

    Returns:
        tuple[Tensor, Tensor]: ``Tensor[B, H, W]`` spatial and
        ``Tensor[B, C]`` channel attention.
    """
    B, C, H, W = feat.shape
    value = feat.abs()
    spatial = value.mean(dim=1)  # Eq. (4) G^S
    channel = value.mean(dim=(2, 3))  # Eq. (4) G^C
    spatial = H * W * F.softmax((spatial / temp).view(B, -1), dim=1)
    channel = C * F.softmax(channel / temp, dim=1)  # Eq. (5)
    return spatial.view(B, H, W), channel


def fgd_feature_loss(feat_s: Tensor, feat_t: Tensor, fg: Tensor, bg: Tensor,
                     spatial_t: Tensor,
                     channel_t: Tensor) -> Tuple[Tensor, Tensor]:
    """Foreground and background parts of Eq. (6), before ``alpha``/``beta``.

    ``sum(fg * A_S * A_C * (F_T - f(F_S))^2)`` and the same with ``bg``,
    summed over channels and positions and averaged over the batch, with the
    teacher's attention ``A_S``, ``A_C``.

    Args:
        feat_s (Tensor): Aligned student feature ``f(F_S)``,
            ``Tensor[B, C, H, W]``.
        feat_t (Tensor): Teacher feature ``F_T``, ``Tensor[B, C, H, W]``.
        fg (Tensor): Foreground weights ``M * S``, ``Tensor[B, H, W]``.
        bg (Tensor): Background weights ``(1 - M) * S``, ``Tensor[B, H, W]``.
        spatial_t (Tensor): Teacher spatial attention, ``Tensor[B, H, W]``.
        channel_t (Tensor): Teacher channel attention, ``Tensor[B, C]``.

    Returns:
        tuple[Tensor, Tensor]: Scalar foreground and background losses.
    """
    num_imgs = feat_s.shape[0]
    # FGD Eq. (6) / LD-WSCCD Eq. (12): sum_k,i,j mask A^S A^C (F_T - f(F_S))^2
    sq = (feat_t - feat_s).pow(2)
    per_pixel = (sq * channel_t[:, :, None, None]).sum(dim=1) * spatial_t
    loss_fg = (per_pixel * fg.to(per_pixel.dtype)).sum() / num_imgs
    loss_bg = (per_pixel * bg.to(per_pixel.dtype)).sum() / num_imgs
    return loss_fg, loss_bg


def fgd_attention_loss(spatial_s: Tensor,
                       channel_s: Tensor,
                       spatial_t: Tensor,
                       channel_t: Tensor,
                       reduction: str = 'sum') -> Tensor:
    """Attention imitation of Eq. (7), before ``gamma``.

    ``reduction='sum'`` (FGD): ``L1(A_S_t, A_S_s) + L1(A_C_t, A_C_s)``,
    summed over positions / channels and averaged over the batch.
    ``reduction='mean'`` (LD-WSCCD Eq. (13), ``l`` = mean absolute error):
    the mean over the ``H * W`` positions plus the mean over the ``C``
    channels, averaged over the batch.

    Args:
        spatial_s (Tensor): Student spatial attention, ``Tensor[B, H, W]``.
        channel_s (Tensor): Student channel attention, ``Tensor[B, C]``.
        spatial_t (Tensor): Teacher spatial attention, ``Tensor[B, H, W]``.
        channel_t (Tensor): Teacher channel attention, ``Tensor[B, C]``.

        reduction (str): ``'sum'`` (FGD) or ``'mean'`` (LD-WSCCD).

    Returns:
        Tensor: Scalar loss.
    """
    if reduction == 'mean':
        # LD-WSCCD Eq. (13): l(A_t^S, A_s^S) + l(A_t^C, A_s^C), l = MAE
        return ((spatial_t - spatial_s).abs().flatten(1).mean(1) +
                (channel_t - channel_s).abs().mean(1)).mean()
    if reduction != 'sum':
        raise ValueError(f"reduction must be 'sum' or 'mean', got "
                         f'{reduction!r}')
    num_imgs = spatial_s.shape[0]
    return ((spatial_t - spatial_s).abs().sum() +
            (channel_t - channel_s).abs().sum()) / num_imgs


def fgd_global_loss(relation_s: Tensor, relation_t: Tensor) -> Tensor:
    """Global relation loss of Eq. (9), before ``lambda``.

    Args:
        relation_s (Tensor): ``R(f(F_S))``, ``Tensor[B, C, H, W]``.
        relation_t (Tensor): ``R(F_T)``, ``Tensor[B, C, H, W]``.

    Returns:
        Tensor: ``sum((R(F_T) - R(f(F_S)))^2)`` averaged over the batch.
    """
    return (relation_t - relation_s).pow(2).sum() / relation_s.shape[0]


@MODELS.register_module()
class FGDLoss(nn.Module):
    """FGD loss between one student and one teacher feature map.

    ``loss = loss_weight * (alpha * L_fg + beta * L_bg + gamma * L_at
    + lambda * L_global)`` (Eq. (6), (7), (9)), with the teacher's attention
    weighting the feature imitation. Where the channel counts differ, a 1x1
    conv ``f`` maps the student feature to the teacher's channels; the
    student side of every term uses ``f(F_S)``.

    Args:
        student_channels (int): Channels ``C_S`` of the student feature.
        teacher_channels (int): Channels ``C_T`` of the teacher feature.
        temp (float): Attention temperature ``T``. Defaults to 0.5.
        alpha_fgd (float): Weight of the foreground feature loss.
            Defaults to 1e-3 (FGD's RetinaNet setting).
        beta_fgd (float): Weight of the background feature loss.
            Defaults to 5e-4.
        gamma_fgd (float): Weight of the attention loss. Defaults to 1e-3.
        lambda_fgd (float): Weight of the global relation loss; 0 disables
            it (and builds no GcBlocks). Defaults to 5e-6.
        loss_weight (float): Multiplier of the whole loss. Defaults to 1.0.
        scale_mask (bool): FGD's scale mask (True, Eq. (3)) or LD-WSCCD's
            binary ground-truth-box mask (False, its Eq. (9)). Defaults to
            True.
        attention_reduction (str): ``'sum'`` (FGD Eq. (7): L1 summed over
            positions and channels) or ``'mean'`` (LD-WSCCD Eq. (13): mean
            absolute errors). Defaults to ``'sum'``.

    Presets (FGD paper / reference configs): RetinaNet ``alpha=1e-3,
    beta=5e-4, gamma=1e-3, lambda=5e-6``; Faster R-CNN ``alpha=5e-5,
    beta=2.5e-5, gamma=5e-5, lambda=5e-7``; LD-WSCCD (Eq. (9)-(14)):
    ``scale_mask=False, attention_reduction='mean', lambda=0`` (weights in
    ``configs/fgd/_base_/fgd_presets.py``); see ``configs/fgd/README.md``.
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 temp: float = 0.5,
                 alpha_fgd: float = 1e-3,
                 beta_fgd: float = 5e-4,
                 gamma_fgd: float = 1e-3,
                 lambda_fgd: float = 5e-6,
                 loss_weight: float = 1.0,
                 scale_mask: bool = True,
                 attention_reduction: str = 'sum') -> None:
        super().__init__()
        if attention_reduction not in ('sum', 'mean'):
            raise ValueError(
                "FGDLoss: attention_reduction must be 'sum' (FGD) or 'mean' "
                f'(LD-WSCCD Eq. (13)), got {attention_reduction!r}')
        self.scale_mask = bool(scale_mask)
        self.attention_reduction = attention_reduction
        for name, value in (('student_channels', student_channels),
                            ('teacher_channels', teacher_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'FGDLoss: {name} must be a positive int (the channel '
                    f'count of the distilled feature), got {value!r}')
        if temp <= 0:
            raise ValueError(f'FGDLoss: temp must be > 0, got {temp}')
        for name, value in (('alpha_fgd', alpha_fgd), ('beta_fgd', beta_fgd),
                            ('gamma_fgd', gamma_fgd),
                            ('lambda_fgd', lambda_fgd),
                            ('loss_weight', loss_weight)):
            if value < 0:
                raise ValueError(f'FGDLoss: {name} must be >= 0, got {value}')
        self.student_channels = student_channels
        self.teacher_channels = teacher_channels
        self.temp = temp
        self.alpha_fgd = alpha_fgd
        self.beta_fgd = beta_fgd
        self.gamma_fgd = gamma_fgd
        self.lambda_fgd = lambda_fgd
        self.loss_weight = loss_weight
        if student_channels != teacher_channels:
            self.align = nn.Conv2d(student_channels, teacher_channels, 1)
        else:
            self.align = nn.Identity()
        if lambda_fgd > 0:
            # GcBlock context modelling + channel-add transform, Eq. (9):
            # R(F) = F + W_v2(ReLU(LN(W_v1(sum_j softmax(W_k F)_j F_j)))),
            # last conv zero-initialised (R starts as the identity).
            self.global_s = ContextBlock(
                teacher_channels, ratio=0.5, fusion_types=('channel_add', ))
            self.global_t = ContextBlock(
                teacher_channels, ratio=0.5, fusion_types=('channel_add', ))
        else:
            self.global_s = None
            self.global_t = None

    def _check_inputs(self, preds_S: Tensor, preds_T: Tensor,
                      gt_bboxes: Sequence) -> None:
        if preds_S.dim() != 4 or preds_T.dim() != 4:
            raise ValueError(
                'FGDLoss: features must be Tensor[B, C, H, W]; got student '
                f'{tuple(preds_S.shape)} and teacher {tuple(preds_T.shape)}')
        if preds_S.shape[1] != self.student_channels:
            raise ValueError(
                f'FGDLoss: the student feature has {preds_S.shape[1]} '
                f'channels but student_channels={self.student_channels}; set '
                'student_channels in the loss config to the channel count of '
                'the chosen student module')
        if preds_T.shape[1] != self.teacher_channels:
            raise ValueError(
                f'FGDLoss: the teacher feature has {preds_T.shape[1]} '
                f'channels but teacher_channels={self.teacher_channels}; set '
                'teacher_channels in the loss config to the channel count of '
                'the chosen teacher module')
        if preds_S.shape[0] != preds_T.shape[0] or \
                preds_S.shape[-2:] != preds_T.shape[-2:]:
            raise ValueError(
                'FGDLoss: student and teacher features must have the same '
                f'batch and spatial size; got student {tuple(preds_S.shape)} '
                f'and teacher {tuple(preds_T.shape)}. Pair levels of the same '
                'stride and feed both models the same input size.')
        if len(gt_bboxes) != preds_S.shape[0]:
            raise ValueError(
                f'FGDLoss: {len(gt_bboxes)} ground-truth box tensors for a '
                f'batch of {preds_S.shape[0]} feature maps')

    def forward(self,
                preds_S: Tensor,
                preds_T: Tensor,
                gt_bboxes: Sequence[Tensor],
                batch_input_shape: Tuple[int, int],
                return_components: bool = False
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Compute the loss.

        Args:
            preds_S (Tensor): Student feature ``Tensor[B, C_S, H, W]``.
            preds_T (Tensor): Teacher feature ``Tensor[B, C_T, H, W]``
                (detached here: the teacher gets no gradient).
            gt_bboxes (list[Tensor]): ``B`` tensors ``Tensor[n_i, 4]``,
                ``(x1, y1, x2, y2)`` in pixels of the padded batch input.
            batch_input_shape (tuple[int, int]): ``(H_in, W_in)`` of the
                padded batch input.
            return_components (bool): Return the weighted terms as a dict
                (``loss_fg``, ``loss_bg``, ``loss_at`` and, when
                ``lambda_fgd > 0``, ``loss_global``) instead of their sum.

        Returns:
            Tensor | dict[str, Tensor]: The scalar loss, or its terms.
        """
        self._check_inputs(preds_S, preds_T, gt_bboxes)
        preds_T = preds_T.detach()
        feat_s = self.align(preds_S)
        fg, bg = fgd_masks(gt_bboxes, batch_input_shape, preds_T.shape[-2:],
                           device=preds_T.device, scale_mask=self.scale_mask)
        spatial_t, channel_t = fgd_attention(preds_T, self.temp)
        spatial_s, channel_s = fgd_attention(feat_s, self.temp)
        loss_fg, loss_bg = fgd_feature_loss(feat_s, preds_T, fg, bg,
                                            spatial_t, channel_t)
        loss_at = fgd_attention_loss(spatial_s, channel_s, spatial_t,
                                     channel_t,
                                     reduction=self.attention_reduction)
        w = self.loss_weight
        terms = dict(
            loss_fg=w * self.alpha_fgd * loss_fg,
            loss_bg=w * self.beta_fgd * loss_bg,
            loss_at=w * self.gamma_fgd * loss_at)
        if self.global_s is not None:
            terms['loss_global'] = w * self.lambda_fgd * fgd_global_loss(
                self.global_s(feat_s), self.global_t(preds_T))
        if return_components:
            return terms
        return sum(terms.values())

    def extra_repr(self) -> str:
        return (f'student_channels={self.student_channels}, '
                f'teacher_channels={self.teacher_channels}, temp={self.temp}, '
                f'alpha_fgd={self.alpha_fgd}, beta_fgd={self.beta_fgd}, '
                f'gamma_fgd={self.gamma_fgd}, lambda_fgd={self.lambda_fgd}, '
                f'loss_weight={self.loss_weight}, scale_mask='
                f'{self.scale_mask}, attention_reduction='
                f'{self.attention_reduction!r}')
