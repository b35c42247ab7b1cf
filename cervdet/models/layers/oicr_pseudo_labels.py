"""Scores, pseudo labels and losses of OICR (weakly supervised detection).

Tang et al., "Multiple Instance Detection Network with Online Instance
Classifier Refinement", CVPR 2017 (OICR), as used by LD-WSCCD (Yin et al.,
IEEE Access 2024) for cervical cytology.

Conventions: ``C`` foreground classes; refinement classifiers have ``C + 1``
outputs with the background **last** (index ``C``), as in mmdet. Boxes are
``(x1, y1, x2, y2)`` in one image's coordinate frame.
"""
import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import batched_nms
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

PSEUDO_LABEL_MODES = ('top1', 'top_ratio')


def segment_softmax(x: Tensor, segment_ids: Tensor,
                    num_segments: int) -> Tensor:
    """Softmax over the rows of each segment, column by column.

    Args:
        x (Tensor[N, C]): Logits.
        segment_ids (Tensor[N]): Segment (image) index of every row, in
            ``[0, num_segments)``; rows need not be sorted.
        num_segments (int): Number of segments ``B``.

    Returns:
        Tensor[N, C]: ``exp(x_rc) / sum_{r' in seg(r)} exp(x_r'c)``.
    """
    if x.size(0) == 0:
        return x * 0.
    ids = segment_ids.long()
    index = ids.view(-1, 1).expand_as(x)
    # a per-segment shift keeps exp() finite; softmax is invariant to it
    seg_max = x.new_full((num_segments, x.size(1)), float('-inf'))
    seg_max = seg_max.scatter_reduce(
        0, index, x.detach(), reduce='amax', include_self=True)
    ex = (x - seg_max[ids]).exp()
    denom = x.new_zeros(num_segments, x.size(1)).index_add(0, ids, ex)
    return ex / denom[ids]


def mil_image_scores(
        det_logits: Tensor,
        cls_logits: Tensor,
        batch_inds: Optional[Tensor] = None,
        num_images: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Two-stream MIL (WSDDN) region and image scores.

    ``x^R = softmax_over_regions(x^d) * softmax_over_classes(x^c)`` and the
    image score ``phi_c = sum_r x^R_cr`` (OICR Eq. (1)).

    Args:
        det_logits (Tensor[R, C]): Detection-stream logits ``x^d``
            (normalised over the regions of an image).
        cls_logits (Tensor[R, C]): Classification-stream logits ``x^c``
            (normalised over the classes of a region).
        batch_inds (Tensor[R], optional): Image index of every region, for
            a batch of images packed together. ``None``: all regions belong
            to one image.
        num_images (int, optional): Number of images ``B`` (required with
            ``batch_inds``).

    Returns:
        tuple[Tensor, Tensor]: ``region_scores`` ``Tensor[R, C]`` (``x^R``)
        and ``image_scores`` ``Tensor[C]`` (one image) or ``Tensor[B, C]``
        (rows of images without regions are 0). Not clamped.
    """
    if det_logits.shape != cls_logits.shape:
        raise ValueError('det_logits and cls_logits must have the same shape; '
                         f'got {tuple(det_logits.shape)} and '
                         f'{tuple(cls_logits.shape)}')
    # x^R = sigma_regions(x^d) * sigma_classes(x^c); phi_c = sum_r x^R_cr,
    # OICR Eq. (1)
    cls_probs = cls_logits.softmax(dim=1)
    if batch_inds is None:
        region_scores = det_logits.softmax(dim=0) * cls_probs
        return region_scores, region_scores.sum(dim=0)
    if num_images is None:
        raise ValueError('num_images is required with batch_inds')
    region_scores = segment_softmax(det_logits, batch_inds,
                                    num_images) * cls_probs
    image_scores = region_scores.new_zeros(num_images, det_logits.size(1))
    image_scores = image_scores.index_add(0, batch_inds.long(), region_scores)
    return region_scores, image_scores


def mil_loss(image_scores: Tensor,
             img_labels: Tensor,
             eps: float = 1e-6) -> Tensor:
    """Multi-label image classification loss of the MIL branch.

    OICR Eq. (2), ``-[y_c log phi_c + (1 - y_c) log(1 - phi_c)]``, averaged
    over classes (and images) instead of summed over classes (a constant
    factor ``C``).

    Args:
        image_scores (Tensor[C] | Tensor[B, C]): ``phi``, in ``[0, 1]``.
        img_labels (Tensor[C] | Tensor[B, C]): Multi-hot image labels
            ``y`` (all zeros for an image without a positive class).
        eps (float): ``phi`` is clamped to ``[eps, 1 - eps]`` (no ``log 0``).

    Returns:
        Tensor: Scalar loss.
    """
    if image_scores.shape != img_labels.shape:
        raise ValueError('image_scores and img_labels must have the same '
                         f'shape; got {tuple(image_scores.shape)} and '
                         f'{tuple(img_labels.shape)}')
    if image_scores.numel() == 0:
        return image_scores.sum() * 0.
    scores = image_scores.clamp(min=eps, max=1. - eps)
    # OICR Eq. (2), mean over classes
    return F.binary_cross_entropy(scores, img_labels.to(scores.dtype))


def weighted_cross_entropy(cls_logits: Tensor,
                           labels: Tensor,
                           weights: Tensor,
                           avg_factor: Optional[float] = None) -> Tensor:
    """Proposal-weighted cross-entropy of a refinement classifier.

    OICR Eq. (4): ``L^k_r = -1/|R| sum_r w^k_r log p^k_{r, y_r}`` with
    ``p^k = softmax(cls_logits)`` over ``C + 1`` classes.

    Args:
        cls_logits (Tensor[R, C+1]): Refinement logits (background last).
        labels (Tensor[R]): Pseudo labels in ``[0, C]`` (``C``: background).
        weights (Tensor[R]): Loss weight ``w_r`` of every proposal (its pseudo
            box's score; 0 = ignored).
        avg_factor (float, optional): Normaliser; ``None`` = ``R``.

    Returns:
        Tensor: Scalar loss; 0 (attached to ``cls_logits``) when ``R == 0``.
    """
    if cls_logits.size(0) == 0:
        return cls_logits.sum() * 0.
    # OICR Eq. (4): -1/|R| sum_r w_r log p_{r, y_r}
    log_probs = F.log_softmax(cls_logits, dim=1)
    nll = -log_probs.gather(1, labels.long().view(-1, 1)).squeeze(1)
    if avg_factor is None:
        avg_factor = cls_logits.size(0)
    return (weights.to(nll.dtype) * nll).sum() / avg_factor


class PseudoLabels(NamedTuple):
    """Per-proposal supervision of one refinement stage (one image).

    Attributes:
        labels (Tensor[R]): Class in ``[0, C]``; ``C`` = background.
        weights (Tensor[R]): Loss weight (score of the assigned pseudo box;
            0 for ignored proposals).
        target_bboxes (Tensor[R, 4]): The assigned pseudo box of every
            proposal (the proposal itself when there is no pseudo box);
            regression targets of the foreground proposals.
        assigned_inds (Tensor[R]): Index of the assigned (max-IoU) pseudo box,
            -1 when there is none.
        max_ious (Tensor[R]): IoU with the assigned pseudo box (0 if none).
        pseudo_bboxes (Tensor[M, 4]): Pseudo boxes, highest score first.
        pseudo_labels (Tensor[M]): Their classes in ``[0, C)``.
        pseudo_scores (Tensor[M]): Their scores.
    """
    labels: Tensor
    weights: Tensor
    target_bboxes: Tensor
    assigned_inds: Tensor
    max_ious: Tensor
    pseudo_bboxes: Tensor
    pseudo_labels: Tensor
    pseudo_scores: Tensor


def mine_pseudo_boxes(proposals: Tensor,
                      region_scores: Tensor,
                      img_labels: Tensor,
                      mode: str = 'top1',
                      top_ratio: float = 0.1,
                      nms_thr: Optional[float] = 0.3
                      ) -> Tuple[Tensor, Tensor, Tensor]:
    """Pseudo boxes of the positive classes of one image.

    ``'top1'``: for each positive class ``c`` OICR's top-scoring proposal
    ``j_c = argmax_r x_cr``, with score ``x_{c j_c}``;
    ``'top_ratio'``: for each positive class the ``max(1, floor(top_ratio *
    R))`` highest-scoring proposals, de-duplicated per class with NMS at
    ``nms_thr`` (images of cervical cells hold many abnormal cells of a
    class, not one object).

    Args:
        proposals (Tensor[R, 4]): Proposal boxes.
        region_scores (Tensor[R, C]): Scores of the previous stage
            (foreground classes only); treated as constants.
        img_labels (Tensor[C]): Multi-hot image labels (``> 0`` = present).
        mode (str): ``'top1'`` or ``'top_ratio'``.
        top_ratio (float): Fraction of proposals per class (``'top_ratio'``).
        nms_thr (float, optional): IoU threshold of the per-class NMS of
            ``'top_ratio'``; ``None`` keeps every selected proposal.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``bboxes`` ``Tensor[M, 4]``, ``labels``
        ``Tensor[M]`` (long) and ``scores`` ``Tensor[M]``, sorted by score,
        highest first. ``M = 0`` without positive class or proposal.
    """
    if mode not in PSEUDO_LABEL_MODES:
        raise ValueError(f'mode must be one of {PSEUDO_LABEL_MODES}; '
                         f'got {mode!r}')
    region_scores = region_scores.detach()
    num_props = proposals.size(0)
    pos_classes = (img_labels > 0).nonzero(as_tuple=False).view(-1)
    if num_props == 0 or pos_classes.numel() == 0:
        return (proposals.new_zeros(0, 4),
                pos_classes.new_zeros(0, dtype=torch.long),
                region_scores.new_zeros(0))
    pos_scores = region_scores[:, pos_classes]  # [R, P]
    if mode == 'top1':
        scores, inds = pos_scores.max(dim=0)  # [P]
        labels = pos_classes
    else:
        k = min(num_props, max(1, math.floor(top_ratio * num_props + 1e-6)))
        scores, inds = pos_scores.topk(k, dim=0)  # [k, P]
        labels = pos_classes.view(1, -1).expand(k, -1)
        scores, inds, labels = (scores.reshape(-1), inds.reshape(-1),
                                labels.reshape(-1))
        if nms_thr is not None and k > 1:
            _, keep = batched_nms(proposals[inds].float(), scores.float(),
                                  labels, dict(type='nms',
                                               iou_threshold=nms_thr))
            scores, inds, labels = scores[keep], inds[keep], labels[keep]
    order = scores.argsort(descending=True)
    return proposals[inds[order]], labels[order].long(), scores[order]


def assign_pseudo_labels(proposals: Tensor,
                         pseudo_bboxes: Tensor,
                         pseudo_labels: Tensor,
                         pseudo_scores: Tensor,
                         num_classes: int,
                         fg_iou_thr: float = 0.5,
                         bg_ignore_iou_thr: Optional[float] = None,
                         neg_weight: float = 1.0) -> PseudoLabels:
    """Propagate pseudo boxes to all proposals by overlap.

    Every proposal is assigned the pseudo box it overlaps most: its class if
    that IoU ``>= fg_iou_thr``, background (``num_classes``) otherwise; its
    weight is the pseudo box's score (OICR's ``w_r``), or 0 (ignored) when
    the IoU ``< bg_ignore_iou_thr``. Ties go to the higher-scoring pseudo box
    (``pseudo_bboxes`` sorted by score, first maximum taken), so a proposal
    overlapping no pseudo box is background weighted by the top score, as in
    OICR. Without pseudo
    box (an image with no positive class) every proposal is background with
    weight ``neg_weight``.

    Args:
        proposals (Tensor[R, 4]): Proposal boxes.
        pseudo_bboxes (Tensor[M, 4]): Pseudo boxes, highest score first.
        pseudo_labels (Tensor[M]): Their classes in ``[0, num_classes)``.
        pseudo_scores (Tensor[M]): Their scores.
        num_classes (int): ``C``; the background label.
        fg_iou_thr (float): Foreground IoU threshold (``>=``).
        bg_ignore_iou_thr (float, optional): Proposals whose IoU with every
            pseudo box is below this are ignored; ``None``: none ignored.
        neg_weight (float): Weight of the proposals of an image without
            pseudo box.

    Returns:
        PseudoLabels: Per-proposal supervision.
    """
    num_props, num_pseudo = proposals.size(0), pseudo_bboxes.size(0)
    device = proposals.device
    if num_pseudo == 0:
        return PseudoLabels(
            labels=torch.full((num_props, ), num_classes, dtype=torch.long,
                              device=device),
            weights=proposals.new_full((num_props, ), neg_weight),
            target_bboxes=proposals.clone(),
            assigned_inds=torch.full((num_props, ), -1, dtype=torch.long,
                                     device=device),
            max_ious=proposals.new_zeros(num_props),
            pseudo_bboxes=pseudo_bboxes,
            pseudo_labels=pseudo_labels.long(),
            pseudo_scores=pseudo_scores)
    if num_props == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return PseudoLabels(empty, proposals.new_zeros(0),
                            proposals.new_zeros(0, 4), empty.clone(),
                            proposals.new_zeros(0), pseudo_bboxes,
                            pseudo_labels.long(), pseudo_scores)
    ious = bbox_overlaps(proposals, pseudo_bboxes.to(proposals.dtype))
    max_ious, assigned = ious.max(dim=1)  # [R]
    is_fg = max_ious >= fg_iou_thr
    labels = torch.where(is_fg, pseudo_labels.long()[assigned],
                         torch.full_like(assigned, num_classes))
    weights = pseudo_scores.to(proposals.dtype)[assigned]
    if bg_ignore_iou_thr is not None:
        weights = torch.where(max_ious < bg_ignore_iou_thr,
                              torch.zeros_like(weights), weights)
    return PseudoLabels(
        labels=labels,
        weights=weights,
        target_bboxes=pseudo_bboxes.to(proposals.dtype)[assigned],
        assigned_inds=assigned,
        max_ious=max_ious,
        pseudo_bboxes=pseudo_bboxes,
        pseudo_labels=pseudo_labels.long(),
        pseudo_scores=pseudo_scores)


@torch.no_grad()
def oicr_pseudo_labels(proposals: Tensor,
                       region_scores: Tensor,
                       img_labels: Tensor,
                       fg_iou_thr: float = 0.5,
                       bg_ignore_iou_thr: Optional[float] = None,
                       mode: str = 'top1',
                       top_ratio: float = 0.1,
                       nms_thr: Optional[float] = 0.3,
                       gt_bboxes: Optional[Tensor] = None,
                       gt_labels: Optional[Tensor] = None,
                       neg_weight: float = 1.0) -> PseudoLabels:
    """Supervision of refinement stage ``k`` from the scores of stage ``k-1``.

    Pseudo boxes are mined from ``region_scores`` with
    :func:`mine_pseudo_boxes`, or, when ground-truth boxes are given and
    non-empty (mixed supervision), are those boxes with score 1; they are
    then propagated to all proposals with :func:`assign_pseudo_labels`.
    Computed without gradient.

    Args:
        proposals (Tensor[R, 4]): Proposal boxes of one image.
        region_scores (Tensor[R, C]): Previous stage's foreground scores.
        img_labels (Tensor[C]): Multi-hot image labels.
        fg_iou_thr, bg_ignore_iou_thr, neg_weight: See
            :func:`assign_pseudo_labels`.
        mode, top_ratio, nms_thr: See :func:`mine_pseudo_boxes`.
        gt_bboxes (Tensor[G, 4], optional): Ground-truth boxes in the
            proposals' frame.
        gt_labels (Tensor[G], optional): Their classes (required with
            non-empty ``gt_bboxes``).

    Returns:
        PseudoLabels: ``labels`` ``Tensor[R]`` in ``[0, C]``, ``weights``
        ``Tensor[R]``, ``target_bboxes`` ``Tensor[R, 4]``, ...
    """
    num_classes = region_scores.size(1)
    if img_labels.numel() != num_classes:
        raise ValueError(f'img_labels must be multi-hot over {num_classes} '
                         f'classes; got shape {tuple(img_labels.shape)}')
    if bg_ignore_iou_thr is not None and bg_ignore_iou_thr > fg_iou_thr:
        raise ValueError(f'bg_ignore_iou_thr ({bg_ignore_iou_thr}) must not '
                         f'exceed fg_iou_thr ({fg_iou_thr})')
    if gt_bboxes is not None and gt_bboxes.numel() > 0:
        if gt_labels is None or gt_labels.numel() != gt_bboxes.size(0):
            raise ValueError('gt_labels must give one class per gt box')
        pseudo = (gt_bboxes.to(proposals.dtype), gt_labels.long(),
                  proposals.new_ones(gt_bboxes.size(0)))
    else:
        pseudo = mine_pseudo_boxes(proposals, region_scores, img_labels,
                                   mode=mode, top_ratio=top_ratio,
                                   nms_thr=nms_thr)
    return assign_pseudo_labels(
        proposals, *pseudo, num_classes=num_classes, fg_iou_thr=fg_iou_thr,
        bg_ignore_iou_thr=bg_ignore_iou_thr, neg_weight=neg_weight)


__all__ = [
    'segment_softmax', 'mil_image_scores', 'mil_loss',
    'weighted_cross_entropy', 'PseudoLabels', 'mine_pseudo_boxes',
    'assign_pseudo_labels', 'oicr_pseudo_labels'
]
