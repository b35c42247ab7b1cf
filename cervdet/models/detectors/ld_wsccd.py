"""LD-WSCCD's detector: SSD with a MIL detector on fused multi-scale features.

Yin et al., "Enhancing Cervical Cell Detection Through Weakly Supervised
Learning With Local Distillation Mechanism", IEEE Access 2024, Sec. III.D:
an SSD (VGG16, prior boxes of Eq. (4), MultiBox loss Eq. (5)-(7)) whose
multi-scale features are fused and fed through two FC layers into the
detection and classification streams of a MIL detector refined as in OICR
(Eq. (15)-(16)). The local distillation (Eq. (8)-(14)) wraps this model in
:class:`~cervdet.models.detectors.FeatureDistiller`; the boxes the aggregated
refinement output finds are exposed for its mask (``distill_boxes``).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers.oicr_pseudo_labels import mine_pseudo_boxes
from .wsod_detector import WSODDetector, image_labels_from_sample

#: Where the MIL regions come from (``mil_regions.source``).
REGION_SOURCES = ('ssd', 'priors', 'proposals')
#: Which head gives the detections at test time (``predict_with``).
PREDICT_SOURCES = ('mil', 'ssd')


def boxes_known(data_sample: DetDataSample) -> bool:
    """Whether a sample's ground-truth boxes may supervise the SSD.

    The ``has_boxes`` metainfo when present (``WeakCocoDataset``: False for
    an image whose boxes were dropped), else whether the sample carries
    ``gt_instances`` at all.
    """
    if 'has_boxes' in data_sample.metainfo:
        return bool(data_sample.metainfo['has_boxes'])
    return 'gt_instances' in data_sample


def select_regions(fg_scores: Tensor,
                   boxes: Tensor,
                   img_shape: Tuple[int, int],
                   nms_pre: int,
                   iou_threshold: Optional[float],
                   max_per_img: int,
                   min_size: float = 0.) -> Tensor:
    """The MIL regions of one image from its scored candidate boxes.

    The ``nms_pre`` highest-scoring candidates, clipped to the image,
    without boxes smaller than ``min_size`` on a side, class-agnostic NMS at
    ``iou_threshold`` (``None``: none), the ``max_per_img`` best kept.

    Args:
        fg_scores (Tensor[N]): Foreground score of every candidate.
        boxes (Tensor[N, 4]): Candidates ``(x1, y1, x2, y2)`` in input
            pixels.
        img_shape (tuple[int, int]): ``(h, w)`` of the image in the input.
        nms_pre (int): Candidates kept before NMS.
        iou_threshold (float, optional): NMS IoU.
        max_per_img (int): Regions kept.
        min_size (float): Smallest side kept.

    Returns:
        Tensor[R, 4]: Regions, best first (``R <= max_per_img``), detached.
    """
    fg_scores, boxes = fg_scores.detach(), boxes.detach()
    k = min(int(nms_pre), fg_scores.numel())
    scores, inds = fg_scores.topk(k)
    boxes = boxes[inds]
    h, w = img_shape[:2]
    boxes = torch.stack([
        boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
        boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)
    ], dim=1)
    wh = boxes[:, 2:] - boxes[:, :2]
    keep = (wh > max(min_size, 0.)).all(dim=1)
    boxes, scores = boxes[keep], scores[keep]
    if iou_threshold is not None and boxes.size(0) > 1:
        _, order = batched_nms(
            boxes.float(), scores.float(),
            torch.zeros_like(scores, dtype=torch.long),
            dict(type='nms', iou_threshold=float(iou_threshold)))
        boxes = boxes[order]
    return boxes[:max_per_img]


@MODELS.register_module()
class LDWSCCD(SingleStageDetector):
    """SSD + MIL detector with OICR refinement on fused multi-scale features.

    * ``backbone`` + ``neck``: SSD's VGG16 and extra layers, ``L`` levels
      ``Tensor[B, C_l, H_l, W_l]``.
    * ``bbox_head``: SSD's head with the prior boxes of Eq. (4)
      (``SSDPriorBoxGenerator``); on images whose boxes are known
      (:func:`boxes_known`) it is trained with the MultiBox loss, Eq. (5)-(7)
      (softmax confidence with 3:1 hard negatives + smooth L1 on the
      offsets of Eq. (6), over the ``N`` matched priors; 0 when ``N = 0``)
      -> ``loss_conf``, ``loss_loc``.
    * MIL regions (``mil_regions``): per image, the priors ranked by the
      SSD's foreground score ``1 - p_background`` (``nms_pre`` best),
      ``source='ssd'``: regressed by the SSD (the boxes it predicts for
      them), ``'priors'``: the prior boxes themselves, ``'proposals'``:
      precomputed cell proposals (``data_sample.proposals``, the former
      input of :class:`WSODDetector`); then class-agnostic NMS, at most
      ``max_per_img``. Constants (no gradient through the boxes).
    * ``mil_head``: :class:`~cervdet.models.roi_heads.OICRHead` whose RoI
      extractor fuses the levels ``mil_feat_levels``
      (:class:`~cervdet.models.roi_heads.MultiScaleFusionRoIExtractor`),
      two shared FCs, the two streams ``sigma(x^det) * sigma(x^cls)``,
      ``L_cls`` of Eq. (15) on the image labels (``loss_mil``) and ``K``
      refinement stages, Eq. (16) (``loss_ref1..K``).
    * ``distill_boxes`` (set by :meth:`loss`): per image, the top-1 region
      per positive image class under the aggregated (mean over the ``K``
      stages) refinement output, ``Tensor[n_i, 4]`` in input pixels: the
      supervision the distillation takes from it (our reading of Sec.
      III.D.3, "the aggregated output from k optimization stages is
      utilized as the supervised information for the feature distillation
      process"; ``FeatureDistiller(fg_boxes='gt+student')``).

    Image labels: ``img_labels`` (``WeakCocoDataset``) or the labels of the
    ground-truth boxes (:func:`~cervdet.models.detectors.wsod_detector.
    image_labels_from_sample`).

    Args:
        backbone (dict): Backbone config (``SSDVGG``).
        neck (dict): Neck config (``SSDNeck``).
        bbox_head (dict): ``SSDHead`` config.
        mil_head (dict): ``OICRHead`` config.
        mil_regions (dict): ``source`` (one of :data:`REGION_SOURCES`,
            default ``'ssd'``), ``nms_pre`` (1000), ``iou_threshold`` (0.7;
            ``None``: no NMS), ``max_per_img`` (300), ``min_size`` (2).
        mil_feat_levels (Sequence[int], optional): Neck levels the MIL head
            reads; ``None``: all.
        predict_with (str): ``'mil'`` (the paper: the refinement output) or
            ``'ssd'`` (the SSD head's own detections).
        train_cfg (dict, optional): SSD head ``train_cfg`` (assigner,
            ``neg_pos_ratio``, ``smoothl1_beta``, ...).
        test_cfg (dict, optional): SSD head ``test_cfg``.
        data_preprocessor (dict, optional): ``DetDataPreprocessor`` config.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 mil_head: ConfigType,
                 mil_regions: OptConfigType = None,
                 mil_feat_levels: Optional[Sequence[int]] = None,
                 predict_with: str = 'mil',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        regions = dict(source='ssd', nms_pre=1000, iou_threshold=0.7,
                       max_per_img=300, min_size=2.)
        unknown = set(mil_regions or {}) - set(regions)
        if unknown:
            raise ValueError(f'LDWSCCD: unknown mil_regions keys '
                             f'{sorted(unknown)}; expected {sorted(regions)}')
        regions.update(mil_regions or {})
        if regions['source'] not in REGION_SOURCES:
            raise ValueError(f'LDWSCCD: mil_regions.source must be one of '
                             f'{REGION_SOURCES}, got {regions["source"]!r}')
        if predict_with not in PREDICT_SOURCES:
            raise ValueError(f'LDWSCCD: predict_with must be one of '
                             f'{PREDICT_SOURCES}, got {predict_with!r}')
        self.mil_regions = regions
        self.predict_with = predict_with
        self.mil_feat_levels = None if mil_feat_levels is None else tuple(
            int(i) for i in mil_feat_levels)
        self.mil_head = MODELS.build(copy.deepcopy(mil_head))
        if self.mil_head.num_classes != self.bbox_head.num_classes:
            raise ValueError(
                f'LDWSCCD: mil_head.num_classes ({self.mil_head.num_classes})'
                f' must equal bbox_head.num_classes '
                f'({self.bbox_head.num_classes})')
        self.distill_boxes: Optional[List[Tensor]] = None

    @property
    def num_classes(self) -> int:
        """Foreground classes ``C``."""
        return self.bbox_head.num_classes

    # ------------------------------------------------------------ parts ---
    def _mil_feats(self, x: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """The levels the MIL head reads."""
        if self.mil_feat_levels is None:
            return tuple(x)
        if max(self.mil_feat_levels) >= len(x):
            raise ValueError(f'LDWSCCD: mil_feat_levels '
                             f'{self.mil_feat_levels} out of the {len(x)} '
                             'neck levels')
        return tuple(x[i] for i in self.mil_feat_levels)

    def get_regions(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                    batch_data_samples: SampleList) -> List[Tensor]:
        """MIL regions of every image (see the class docstring).

        Args:
            cls_scores (list[Tensor]): SSD logits per level, ``Tensor[B,
                A_l * (C + 1), H_l, W_l]``.
            bbox_preds (list[Tensor]): SSD deltas per level, ``Tensor[B,
                A_l * 4, H_l, W_l]``.
            batch_data_samples (list[DetDataSample]): With ``img_shape``
                (and ``proposals`` for ``source='proposals'``).

        Returns:
            list[Tensor]: ``B`` tensors ``Tensor[R_i, 4]`` in input pixels.
        """
        cfg = self.mil_regions
        if cfg['source'] == 'proposals':
            return [
                p.bboxes.detach().float() if isinstance(p.bboxes, Tensor)
                else p.bboxes.tensor.detach().float()
                for p in WSODDetector.get_proposals(batch_data_samples)
            ]
        num_imgs = cls_scores[0].size(0)
        c1 = self.bbox_head.cls_out_channels
        sizes = [s.shape[-2:] for s in cls_scores]
        priors = torch.cat(self.bbox_head.prior_generator.grid_priors(
            sizes, device=cls_scores[0].device))  # [N, 4]
        logits = torch.cat([
            s.detach().permute(0, 2, 3, 1).reshape(num_imgs, -1, c1)
            for s in cls_scores
        ], 1)
        # background is the last class of mmdet's SSDHead
        fg_scores = 1. - logits.softmax(-1)[..., -1]  # [B, N]
        if cfg['source'] == 'ssd':
            deltas = torch.cat([
                b.detach().permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
                for b in bbox_preds
            ], 1)
            boxes = self.bbox_head.bbox_coder.decode(
                priors[None].expand(num_imgs, -1, -1).reshape(-1, 4),
                deltas.reshape(-1, 4)).view(num_imgs, -1, 4)
        else:
            boxes = priors[None].expand(num_imgs, -1, -1)
        return [
            select_regions(fg_scores[i], boxes[i],
                           batch_data_samples[i].metainfo['img_shape'],
                           cfg['nms_pre'], cfg['iou_threshold'],
                           cfg['max_per_img'], cfg['min_size'])
            for i in range(num_imgs)
        ]

    def get_img_labels(self, batch_data_samples: SampleList,
                       device) -> Tensor:
        """Multi-hot image labels ``Tensor[B, C]``."""
        if not batch_data_samples:
            return torch.zeros(0, self.num_classes, device=device)
        return torch.stack([
            image_labels_from_sample(s, self.num_classes).to(device)
            for s in batch_data_samples
        ])

    def _multibox_loss(self, cls_scores: List[Tensor],
                       bbox_preds: List[Tensor],
                       batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """MultiBox loss, Eq. (5)-(7), on the images with known boxes.

        Returns:
            dict[str, Tensor]: ``loss_conf`` and ``loss_loc``; zeros (on the
            graph) when no image of the batch has a known box (``N = 0``).
        """
        idx = [
            i for i, s in enumerate(batch_data_samples)
            if boxes_known(s) and 'gt_instances' in s
            and len(s.gt_instances) > 0
        ]
        if not idx:
            zero = sum(s.sum() for s in cls_scores) * 0. + \
                sum(b.sum() for b in bbox_preds) * 0.
            return dict(loss_conf=zero, loss_loc=zero.clone())
        sel = torch.as_tensor(idx, device=cls_scores[0].device)
        samples = [batch_data_samples[i] for i in idx]
        losses = self.bbox_head.loss_by_feat(
            [s.index_select(0, sel) for s in cls_scores],
            [b.index_select(0, sel) for b in bbox_preds],
            [s.gt_instances for s in samples], [s.metainfo for s in samples])
        # Eq. (5): 1/N (L_conf + alpha L_loc); mmdet's per-image terms are
        # already divided by the batch's N, so they add up to it
        return dict(loss_conf=sum(losses['loss_cls']),
                    loss_loc=sum(losses['loss_bbox']))

    @torch.no_grad()
    def aggregated_boxes(self, regions: List[Tensor], refine_scores: Tensor,
                         img_labels: Tensor) -> List[Tensor]:
        """Top-1 region per positive class under the aggregated output.

        Args:
            regions (list[Tensor]): ``B`` tensors ``Tensor[R_i, 4]``.
            refine_scores (Tensor[sum R_i, C+1]): Mean of the K refinement
                stages' softmax (background last).
            img_labels (Tensor[B, C]): Multi-hot image labels.

        Returns:
            list[Tensor]: ``B`` tensors ``Tensor[n_i, 4]``, ``n_i`` = number
            of positive classes of image ``i`` (0 without region).
        """
        scores = refine_scores[:, :self.num_classes].split(
            [r.size(0) for r in regions])
        return [
            mine_pseudo_boxes(r, s, lab, mode='top1')[0]
            for r, s, lab in zip(regions, scores, img_labels)
        ]

    # ---------------------------------------------------------- forward ---
    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_conf``, ``loss_loc`` (Eq. (5)-(7)), ``loss_mil`` (Eq.
        (15)), ``loss_ref1..K`` (Eq. (16)); sets ``distill_boxes``.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Images.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (may be empty) and image labels.

        Returns:
            dict[str, Tensor]: Losses.
        """
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds = self.bbox_head(x)
        losses = self._multibox_loss(cls_scores, bbox_preds,
                                     batch_data_samples)
        regions = self.get_regions(cls_scores, bbox_preds, batch_data_samples)
        img_labels = self.get_img_labels(batch_data_samples,
                                         batch_inputs.device)
        outputs: dict = {}
        losses.update(self.mil_head.loss(
            self._mil_feats(x), [InstanceData(bboxes=r) for r in regions],
            batch_data_samples, img_labels, outputs=outputs))
        self.distill_boxes = self.aggregated_boxes(
            regions, outputs['refine_scores'], img_labels)
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections: the aggregated refinement output over the MIL
        regions (``predict_with='mil'``), or the SSD head's (``'ssd'``).

        Returns:
            list[DetDataSample]: ``pred_instances`` with ``bboxes``
            ``Tensor[D, 4]``, ``scores`` ``Tensor[D]``, ``labels``
            ``Tensor[D]``.
        """
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds = self.bbox_head(x)
        if self.predict_with == 'ssd':
            results = self.bbox_head.predict_by_feat(
                cls_scores, bbox_preds,
                batch_img_metas=[s.metainfo for s in batch_data_samples],
                rescale=rescale)
        else:
            regions = self.get_regions(cls_scores, bbox_preds,
                                       batch_data_samples)
            results = self.mil_head.predict(
                self._mil_feats(x), [InstanceData(bboxes=r) for r in regions],
                batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: OptConfigType = None) -> tuple:
        """Raw outputs: SSD ``(cls_scores, bbox_preds)`` and, with data
        samples, the MIL head's outputs on the regions (``dict`` of
        ``OICRHead.forward``)."""
        x = self.extract_feat(batch_inputs)
        cls_scores, bbox_preds = self.bbox_head(x)
        if batch_data_samples is None:
            return cls_scores, bbox_preds
        regions = self.get_regions(cls_scores, bbox_preds, batch_data_samples)
        return cls_scores, bbox_preds, self.mil_head.forward(
            self._mil_feats(x), bbox2roi(regions))


__all__ = ['LDWSCCD', 'boxes_known', 'select_regions', 'REGION_SOURCES',
           'PREDICT_SOURCES']
