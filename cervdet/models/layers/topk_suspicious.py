"""Select a dense detector's top-K "suspicious" boxes per image, batched.

The selection runs on detached predictions of the current training step
(score threshold, per-class NMS, then the K best boxes of every image) and
keeps, for every selected box, the index of the prior (anchor) and the class
it came from, so the caller can read the detector's *differentiable* score of
exactly that box.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from torch import Tensor


def flatten_dense_outputs(cls_scores: Sequence[Tensor],
                          bbox_preds: Sequence[Tensor],
                          num_classes: int) -> Tuple[Tensor, Tensor]:
    """Flatten per-level dense head outputs in mmdet's prior order.

    Args:
        cls_scores (Sequence[Tensor[B, A*C, H_l, W_l]]): Class logits of each
            level.
        bbox_preds (Sequence[Tensor[B, A*4, H_l, W_l]]): Box deltas of each
            level.
        num_classes (int): ``C`` (``cls_out_channels`` of a sigmoid head).

    Returns:
        tuple: ``cls_logits`` Tensor[B, M, C] and ``deltas`` Tensor[B, M, 4]
        with ``M = sum_l H_l * W_l * A``, rows in the order of
        ``prior_generator.grid_priors`` concatenated over levels.
    """
    b = cls_scores[0].shape[0]
    cls_logits = torch.cat([
        s.permute(0, 2, 3, 1).reshape(b, -1, num_classes) for s in cls_scores
    ], dim=1)
    deltas = torch.cat(
        [d.permute(0, 2, 3, 1).reshape(b, -1, 4) for d in bbox_preds], dim=1)
    return cls_logits, deltas


def rank_within_groups(group: Tensor, num_groups: int) -> Tensor:
    """Position of every element among the elements of its group.

    Elements keep their order: in a list sorted by score, the result is each
    element's rank within its image.

    Args:
        group (Tensor[N]): Group index (e.g. image index) of every element.
        num_groups (int): Number of groups.

    Returns:
        Tensor[N]: 0 for the first element of each group, 1 for the second...
    """
    if group.numel() == 0:
        return group.new_zeros(0)
    order = torch.sort(group, stable=True).indices
    sorted_group = group[order]
    counts = torch.bincount(sorted_group, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank_sorted = torch.arange(group.numel(), device=group.device) - \
        starts[sorted_group]
    rank = torch.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def select_topk_suspicious(cls_logits: Tensor, deltas: Tensor, priors: Tensor,
                           bbox_coder, img_shapes: Tensor, topk: int = 10,
                           score_thr: float = 0.05, nms_pre: int = 1000,
                           nms_cfg: Optional[Dict] = None,
                           min_bbox_size: float = 0.) -> Dict[str, Tensor]:
    """Top-K boxes per image after score threshold and NMS (no gradient).

    For every image: the ``nms_pre`` best ``(prior, class)`` pairs, those
    scoring above ``score_thr``, decoded and clipped to the image, per-class
    NMS, then the ``topk`` best. Images with fewer boxes give fewer (or none).
    All images are processed together (one top-k, one NMS call).

    Args:
        cls_logits (Tensor[B, M, C]): Sigmoid-class logits of all priors
            (detached inside).
        deltas (Tensor[B, M, 4]): Box deltas of all priors.
        priors (Tensor[M, 4]): Priors (anchors) ``(x1, y1, x2, y2)``.
        bbox_coder: The head's box coder (``decode(priors, deltas)``).
        img_shapes (Tensor[B, 2]): ``(h, w)`` of every image (boxes are
            clipped to it).
        topk (int): ``K``, boxes kept per image.
        score_thr (float): Smallest class probability kept.
        nms_pre (int): Candidates per image before NMS (``<= 0``: all).
        nms_cfg (dict, optional): mmcv NMS config; default IoU 0.5.
        min_bbox_size (float): Drop boxes whose width or height is not larger.

    Returns:
        dict: with ``N`` the total number of boxes kept (``<= B * topk``),
        sorted by image then score:

        - ``rois`` Tensor[N, 5]: ``(batch_index, x1, y1, x2, y2)``;
        - ``batch_idx`` / ``prior_idx`` / ``labels`` Tensor[N] (long);
        - ``scores`` Tensor[N]: detached class probabilities.
    """
    if nms_cfg is None:
        nms_cfg = dict(type='nms', iou_threshold=0.5)
    b, m, c = cls_logits.shape
    device = cls_logits.device
    with torch.no_grad():
        probs = cls_logits.detach().sigmoid().reshape(b, m * c)
        k_pre = m * c if nms_pre <= 0 else min(int(nms_pre), m * c)
        top_scores, top_idx = probs.topk(k_pre, dim=1)            # [B, k]
        batch_idx = torch.arange(b, device=device)[:, None].expand(-1, k_pre)
        keep = top_scores > score_thr
        scores = top_scores[keep]
        flat_idx = top_idx[keep]
        batch_idx = batch_idx[keep]
        prior_idx = torch.div(flat_idx, c, rounding_mode='floor')
        labels = flat_idx % c
        boxes = bbox_coder.decode(priors[prior_idx],
                                  deltas.detach()[batch_idx, prior_idx])
        shape = img_shapes.to(boxes)[batch_idx]                   # [n, 2] h, w
        max_xy = shape.flip(1).repeat(1, 2)                       # w, h, w, h
        boxes = torch.minimum(boxes.clamp(min=0), max_xy)
        wh = boxes[:, 2:] - boxes[:, :2]
        valid = (wh > min_bbox_size).all(dim=1)
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        batch_idx, prior_idx = batch_idx[valid], prior_idx[valid]

        if scores.numel() > 0:
            _, kept = batched_nms(boxes, scores, batch_idx * c + labels,
                                  dict(nms_cfg))
        else:
            kept = torch.zeros(0, dtype=torch.long, device=device)
        # ``kept`` is sorted by score; keep the K best of every image.
        batch_k = batch_idx[kept]
        kept = kept[rank_within_groups(batch_k, b) < topk]
        order = torch.sort(batch_idx[kept], stable=True).indices
        kept = kept[order]
        out = dict(
            batch_idx=batch_idx[kept],
            prior_idx=prior_idx[kept],
            labels=labels[kept],
            scores=scores[kept])
        out['rois'] = torch.cat(
            [out['batch_idx'].to(boxes)[:, None], boxes[kept]], dim=1)
    return out


def count_per_image(batch_idx: Tensor, num_images: int) -> List[int]:
    """Number of selected boxes of every image."""
    return torch.bincount(batch_idx, minlength=num_images).tolist()


__all__ = [
    'flatten_dense_outputs', 'rank_within_groups', 'select_topk_suspicious',
    'count_per_image'
]
