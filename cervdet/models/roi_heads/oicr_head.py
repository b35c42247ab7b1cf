"""OICR head: MIL branch and K online instance classifier refinement stages.

Tang et al., "Multiple Instance Detection Network with Online Instance
Classifier Refinement", CVPR 2017, as used by LD-WSCCD (Yin et al., IEEE
Access 2024) to train a cervical cell detector from image-level labels.

One module (over 500 lines): the MIL branch, the K refinement stages and
their pseudo-label wiring are one head, as mmdet keeps a head in one file;
the formulas are the pure functions of ``models/layers/oicr_pseudo_labels``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.layers import multiclass_nms
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor, scale_boxes
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers.oicr_pseudo_labels import (
    PSEUDO_LABEL_MODES,
    PseudoLabels,
    mil_image_scores,
    mil_loss,
    oicr_pseudo_labels,
    weighted_cross_entropy,
)

#: Pseudo-label options a detector's ``train_cfg`` may override.
TRAIN_CFG_KEYS = ('fg_iou_thr', 'bg_ignore_iou_thr', 'pseudo_label',
                  'top_ratio', 'pseudo_nms_thr', 'neg_weight',
                  'use_gt_bboxes')


@MODELS.register_module()
class OICRHead(BaseModule):
    """Multiple instance detection network with OICR refinement.

    For the RoI features ``Tensor[N, in_channels, s, s]`` of the proposals
    of a batch, shared FC layers give ``Tensor[N, fc_out_channels]``; then

    * the MIL (WSDDN two-stream) branch: ``fc_mil_cls`` and ``fc_mil_det``
      ``Tensor[N, C]``, region scores ``x^R = softmax_regions(x^d) *
      softmax_classes(x^c)`` per image, image scores ``phi = sum_r x^R``,
      ``loss_mil`` = BCE with the multi-hot image labels;
    * ``num_refine_stages`` refinement classifiers ``fc_refine[k]``
      ``Tensor[N, C+1]`` (background last). Stage ``k`` is supervised by
      pseudo labels mined from the detached scores of stage ``k-1`` (stage 1
      from ``x^R``): :func:`~cervdet.models.layers.oicr_pseudo_labels`, with
      OICR's proposal-weighted cross-entropy, normalised per image by its
      number of proposals and averaged over images -> ``loss_ref{k}``;
    * optionally (``with_reg``) ``fc_reg``, box deltas trained on the
      foreground proposals of the last stage's pseudo labels towards their
      pseudo boxes (weighted by the pseudo box score) -> ``loss_reg``.

    Images with ground-truth boxes (non-empty ``gt_instances``, when
    ``use_gt_bboxes`` and the ``has_boxes`` metainfo, if any, is true) use
    them, with score 1, as the pseudo boxes of every stage (mixed
    supervision). Images without positive class (negative
    fields) have all-zero MIL targets and all proposals background with
    weight ``neg_weight``. Images without proposals are left out of every
    loss term (a zero attached to the graph when no image has any).

    Inference: the mean of the refinement stages' softmax (``Tensor[N,
    C+1]``), per-class score threshold and NMS (``test_cfg``), boxes (the
    proposals, or their regressed boxes with ``with_reg``) clipped to
    ``img_shape`` and, with ``rescale``, divided by ``scale_factor``.

    The interface mirrors :class:`mmdet.models.roi_heads.BaseRoIHead`
    (``loss``/``predict`` of ``(x, rpn_results_list, batch_data_samples)``)
    without its box-head/mask-head machinery, which OICR does not use.

    Args:
        num_classes (int): Foreground classes ``C``.
        bbox_roi_extractor (dict): RoI extractor, e.g. ``dict(
            type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign',
            output_size=7, sampling_ratio=0), out_channels=512,
            featmap_strides=[16])``.
        in_channels (int, optional): Channels of the RoI features; ``None``:
            the extractor's ``out_channels``.
        roi_feat_size (int, optional): Side of the RoI features; ``None``:
            the extractor's ``roi_layer.output_size``.
        num_shared_fcs (int): Shared FC layers (ReLU after each). Defaults
            to 2 (VGG16's fc6/fc7 in OICR).
        fc_out_channels (int | Sequence[int]): Width of the shared FCs (one
            int for all, or one per layer, e.g. ``(4096, 1024)``).
        dropout_ratio (float): Dropout after each shared FC (0 = none).
        num_refine_stages (int): Refinement stages ``K`` (3 in OICR).
        fg_iou_thr (float): IoU (``>=``) with a pseudo box for foreground.
        bg_ignore_iou_thr (float, optional): Proposals whose IoU with every
            pseudo box is below this get weight 0 instead of being
            background; ``None``: all non-foreground proposals are
            background.
        pseudo_label (str): ``'top1'`` (OICR: the top proposal per positive
            class) or ``'top_ratio'`` (the top ``top_ratio`` fraction per
            positive class, NMS at ``pseudo_nms_thr``).
        top_ratio (float): Fraction for ``'top_ratio'``.
        pseudo_nms_thr (float, optional): NMS IoU of ``'top_ratio'``.
        neg_weight (float): Loss weight of the proposals of an image without
            positive class.
        use_gt_bboxes (bool): Use ground-truth boxes as pseudo boxes when an
            image has them. ``False`` trains purely from image labels.
        with_reg (bool): Add the box-regression branch.
        reg_class_agnostic (bool): One box per proposal (``Tensor[N, 4]``)
            rather than one per class (``Tensor[N, 4C]``).
        bbox_coder (dict): Box coder of the regression branch.
        loss_reg (dict): Regression loss (``SmoothL1Loss`` or ``L1Loss``).
        loss_mil_weight (float): Weight of ``loss_mil``.
        loss_ref_weight (float): Weight of every ``loss_ref{k}``.
        mil_eps (float): Clamp of the image scores in ``loss_mil``.
        train_cfg (dict, optional): Overrides of the pseudo-label options
            above (keys in ``TRAIN_CFG_KEYS``), e.g. from the detector's
            ``train_cfg``.
        test_cfg (dict, optional): ``score_thr`` (0.001), ``nms``
            (``dict(type='nms', iou_threshold=0.3)``), ``max_per_img`` (100).
        init_cfg (dict | list[dict], optional): ``None`` = Xavier for the
            shared FCs, Normal(std 0.01) for the classifiers, Normal(std
            0.001) for ``fc_reg``.
    """

    def __init__(self,
                 num_classes: int,
                 bbox_roi_extractor: ConfigType,
                 in_channels: Optional[int] = None,
                 roi_feat_size: Optional[int] = None,
                 num_shared_fcs: int = 2,
                 fc_out_channels: Union[int, Sequence[int]] = 1024,
                 dropout_ratio: float = 0.5,
                 num_refine_stages: int = 3,
                 fg_iou_thr: float = 0.5,
                 bg_ignore_iou_thr: Optional[float] = None,
                 pseudo_label: str = 'top1',
                 top_ratio: float = 0.1,
                 pseudo_nms_thr: Optional[float] = 0.3,
                 neg_weight: float = 1.0,
                 use_gt_bboxes: bool = True,
                 with_reg: bool = False,
                 reg_class_agnostic: bool = True,
                 bbox_coder: ConfigType = dict(
                     type='DeltaXYWHBBoxCoder',
                     target_means=[0., 0., 0., 0.],
                     target_stds=[0.1, 0.1, 0.2, 0.2]),
                 loss_reg: ConfigType = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 loss_mil_weight: float = 1.0,
                 loss_ref_weight: float = 1.0,
                 mil_eps: float = 1e-6,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Xavier', distribution='uniform',
                     override=dict(name='shared_fcs')),
                dict(type='Normal', std=0.01,
                     override=[dict(name='fc_mil_cls'),
                               dict(name='fc_mil_det'),
                               dict(name='fc_refine')]),
            ]
            if with_reg:
                init_cfg.append(
                    dict(type='Normal', std=0.001,
                         override=dict(name='fc_reg')))
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1; got {num_classes}')
        if num_refine_stages < 1:
            raise ValueError('num_refine_stages must be >= 1 (the detector '
                             'scores come from the refinement stages); got '
                             f'{num_refine_stages}')
        self.num_classes = num_classes
        self.num_refine_stages = num_refine_stages
        self.fg_iou_thr = fg_iou_thr
        self.bg_ignore_iou_thr = bg_ignore_iou_thr
        self.pseudo_label = pseudo_label
        self.top_ratio = top_ratio
        self.pseudo_nms_thr = pseudo_nms_thr
        self.neg_weight = neg_weight
        self.use_gt_bboxes = use_gt_bboxes
        for key, value in (train_cfg or {}).items():
            if key not in TRAIN_CFG_KEYS:
                raise ValueError(f'unknown OICRHead train_cfg key {key!r}; '
                                 f'expected one of {TRAIN_CFG_KEYS}')
            setattr(self, key, value)
        if self.pseudo_label not in PSEUDO_LABEL_MODES:
            raise ValueError(f'pseudo_label must be one of '
                             f'{PSEUDO_LABEL_MODES}; got {self.pseudo_label!r}')
        if not 0. < self.top_ratio <= 1.:
            raise ValueError(f'top_ratio must be in (0, 1]; got '
                             f'{self.top_ratio}')
        if (self.bg_ignore_iou_thr is not None
                and self.bg_ignore_iou_thr > self.fg_iou_thr):
            raise ValueError('bg_ignore_iou_thr must not exceed fg_iou_thr')
        self.with_reg = with_reg
        self.reg_class_agnostic = reg_class_agnostic
        self.loss_mil_weight = float(loss_mil_weight)
        self.loss_ref_weight = float(loss_ref_weight)
        self.mil_eps = mil_eps
        self.test_cfg = ConfigDict(
            dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.3),
                 max_per_img=100))
        if test_cfg is not None:
            self.test_cfg.update(test_cfg)

        self.bbox_roi_extractor = MODELS.build(bbox_roi_extractor)
        if in_channels is None:
            in_channels = self.bbox_roi_extractor.out_channels
        if roi_feat_size is None:
            out_size = self.bbox_roi_extractor.roi_layers[0].output_size
            out_size = tuple(out_size) if isinstance(
                out_size, (tuple, list)) else (out_size, out_size)
        else:
            out_size = (roi_feat_size, roi_feat_size)
        self.in_channels = in_channels
        self.roi_feat_size = out_size
        if isinstance(fc_out_channels, int):
            fc_out_channels = [fc_out_channels] * num_shared_fcs
        if len(fc_out_channels) != num_shared_fcs:
            raise ValueError('fc_out_channels needs one width per shared FC')

        layers: List[nn.Module] = []
        last = in_channels * out_size[0] * out_size[1]
        for width in fc_out_channels:
            layers += [nn.Linear(last, width), nn.ReLU(inplace=True)]
            if dropout_ratio > 0:
                layers.append(nn.Dropout(dropout_ratio))
            last = width
        self.shared_fcs = nn.Sequential(*layers)
        self.fc_mil_cls = nn.Linear(last, num_classes)
        self.fc_mil_det = nn.Linear(last, num_classes)
        self.fc_refine = nn.ModuleList(
            nn.Linear(last, num_classes + 1)
            for _ in range(num_refine_stages))
        if with_reg:
            out_dim = 4 if reg_class_agnostic else 4 * num_classes
            self.fc_reg = nn.Linear(last, out_dim)
            self.bbox_coder = TASK_UTILS.build(bbox_coder)
            self.loss_reg = MODELS.build(loss_reg)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self, x: Tuple[Tensor], rois: Tensor) -> Dict:
        """Raw outputs for packed RoIs.

        Args:
            x (tuple[Tensor]): Feature maps, ``Tensor[B, C_l, H_l, W_l]``
                each (the extractor uses the first ``num_inputs``).
            rois (Tensor[N, 5]): ``(batch_ind, x1, y1, x2, y2)``
                (:func:`mmdet.structures.bbox.bbox2roi`).

        Returns:
            dict: ``mil_cls_logits`` and ``mil_det_logits`` ``Tensor[N, C]``,
            ``refine_logits`` list of ``K`` ``Tensor[N, C+1]``,
            ``bbox_deltas`` ``Tensor[N, 4]`` / ``Tensor[N, 4C]`` or ``None``.
        """
        if rois.size(0) == 0:
            # RoI ops are not called on empty input; keep the graph to x
            roi_feats = x[0].new_zeros(0, self.in_channels,
                                       *self.roi_feat_size) + x[0].sum() * 0.
        else:
            roi_feats = self.bbox_roi_extractor(
                x[:self.bbox_roi_extractor.num_inputs], rois)
        feats = self.shared_fcs(roi_feats.flatten(1))
        return dict(
            mil_cls_logits=self.fc_mil_cls(feats),
            mil_det_logits=self.fc_mil_det(feats),
            refine_logits=[fc(feats) for fc in self.fc_refine],
            bbox_deltas=self.fc_reg(feats) if self.with_reg else None)

    @staticmethod
    def _proposal_boxes(rpn_results_list: InstanceList) -> List[Tensor]:
        """Proposal boxes ``Tensor[P_i, 4]`` of every image."""
        return [get_box_tensor(res.bboxes).float() for res in rpn_results_list]

    # ------------------------------------------------------------------ #
    # training
    # ------------------------------------------------------------------ #
    def loss(self,
             x: Tuple[Tensor],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             batch_img_labels: Tensor,
             outputs: Optional[dict] = None) -> Dict[str, Tensor]:
        """Losses of a batch.

        Args:
            x (tuple[Tensor]): Feature maps.
            rpn_results_list (list[InstanceData]): Proposals of every image,
                ``bboxes`` ``Tensor[P_i, 4]`` in the input frame.
            batch_data_samples (list[DetDataSample]): Their samples
                (``gt_instances`` used for mixed supervision).
            batch_img_labels (Tensor[B, C]): Multi-hot image labels.
            outputs (dict, optional): When given, filled with ``rois``
                ``Tensor[N, 5]`` and ``refine_scores`` ``Tensor[N, C+1]``,
                the aggregated (mean) softmax of the K refinement stages,
                detached: the output a caller may mine boxes from (LD-WSCCD
                supervises its distillation with it).

        Returns:
            dict[str, Tensor]: ``loss_mil``, ``loss_ref1`` ..
            ``loss_ref{K}`` and, with ``with_reg``, ``loss_reg``.
        """
        num_imgs, num_classes = len(rpn_results_list), self.num_classes
        if batch_img_labels.shape != (num_imgs, num_classes):
            raise ValueError(f'batch_img_labels must be Tensor[{num_imgs}, '
                             f'{num_classes}]; got '
                             f'{tuple(batch_img_labels.shape)}')
        proposals = self._proposal_boxes(rpn_results_list)
        rois = bbox2roi(proposals)
        out = self.forward(x, rois)
        device = rois.device
        batch_inds = rois[:, 0].long()
        counts = torch.tensor([p.size(0) for p in proposals], device=device)
        valid = counts > 0
        num_valid = int(valid.sum())
        # a zero attached to every output, for terms without any proposal
        zero = sum(v.sum() for v in out['refine_logits']) * 0. + \
            out['mil_cls_logits'].sum() * 0. + out['mil_det_logits'].sum() * 0.

        region_scores, image_scores = mil_image_scores(
            out['mil_det_logits'], out['mil_cls_logits'], batch_inds,
            num_imgs)
        losses = dict()
        if num_valid > 0:
            loss_mil = mil_loss(image_scores[valid],
                                batch_img_labels[valid].to(image_scores),
                                eps=self.mil_eps)
        else:
            loss_mil = zero
        losses['loss_mil'] = self.loss_mil_weight * loss_mil

        # per-proposal normaliser: 1 / |R_i| within an image, mean over images
        row_norm = 1. / (counts[batch_inds].clamp(min=1) * max(num_valid, 1))
        gts = [self._gt_of(s) for s in batch_data_samples]
        prev_scores = region_scores.detach()
        targets: List[PseudoLabels] = []
        for k, logits in enumerate(out['refine_logits']):
            targets = self._pseudo_labels(proposals, prev_scores,
                                          batch_img_labels, gts)
            labels = torch.cat([t.labels for t in targets])
            weights = torch.cat([t.weights for t in targets])
            if num_valid > 0:
                # OICR Eq. (4), per image, averaged over the images
                loss_ref = weighted_cross_entropy(
                    logits, labels, weights * row_norm, avg_factor=1.)
            else:
                loss_ref = zero
            losses[f'loss_ref{k + 1}'] = self.loss_ref_weight * loss_ref
            prev_scores = logits.detach().softmax(dim=1)[:, :num_classes]

        if self.with_reg:
            losses['loss_reg'] = self._loss_reg(out['bbox_deltas'], rois,
                                                targets, zero)
        if outputs is not None:
            outputs['rois'] = rois
            outputs['refine_scores'] = torch.stack([
                logits.detach().softmax(dim=1)
                for logits in out['refine_logits']
            ]).mean(0)
        return losses

    def _gt_of(self,
               data_sample) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """Ground-truth boxes/labels of a sample, or ``(None, None)``.

        ``None`` when ``use_gt_bboxes`` is off, the sample's ``has_boxes``
        metainfo (``WeakCocoDataset``) is false, or it has no box.
        """
        if not self.use_gt_bboxes or 'gt_instances' not in data_sample:
            return None, None
        if not bool(data_sample.metainfo.get('has_boxes', True)):
            return None, None
        gt = data_sample.gt_instances
        if 'bboxes' not in gt or len(gt) == 0:
            return None, None
        return get_box_tensor(gt.bboxes).float(), gt.labels

    def _pseudo_labels(self, proposals: List[Tensor], prev_scores: Tensor,
                       batch_img_labels: Tensor,
                       gts: List[Tuple]) -> List[PseudoLabels]:
        """Pseudo labels of every image from the packed previous scores."""
        scores = prev_scores.split([p.size(0) for p in proposals])
        return [
            oicr_pseudo_labels(
                props, score, img_labels, fg_iou_thr=self.fg_iou_thr,
                bg_ignore_iou_thr=self.bg_ignore_iou_thr,
                mode=self.pseudo_label, top_ratio=self.top_ratio,
                nms_thr=self.pseudo_nms_thr, gt_bboxes=gt[0],
                gt_labels=gt[1], neg_weight=self.neg_weight)
            for props, score, img_labels, gt in zip(
                proposals, scores, batch_img_labels, gts)
        ]

    def _loss_reg(self, deltas: Tensor, rois: Tensor,
                  targets: List[PseudoLabels], zero: Tensor) -> Tensor:
        """Regression loss of the foreground proposals of the last stage.

        Args:
            deltas (Tensor[N, 4] | Tensor[N, 4C]): Predicted deltas.
            rois (Tensor[N, 5]): Packed proposals.
            targets (list[PseudoLabels]): Last stage's pseudo labels.
            zero (Tensor): Graph-attached zero.

        Returns:
            Tensor: ``loss_reg`` (weighted by pseudo box score, averaged over
            the foreground proposals of the batch).
        """
        labels = torch.cat([t.labels for t in targets])
        weights = torch.cat([t.weights for t in targets])
        target_bboxes = torch.cat([t.target_bboxes for t in targets])
        fg = (labels < self.num_classes) & (weights > 0)
        if not bool(fg.any()):
            return zero + deltas.sum() * 0.
        fg_deltas = deltas[fg]
        if not self.reg_class_agnostic:
            fg_deltas = fg_deltas.view(-1, self.num_classes, 4)
            fg_deltas = fg_deltas[torch.arange(fg_deltas.size(0),
                                               device=fg_deltas.device),
                                  labels[fg]]
        reg_targets = self.bbox_coder.encode(rois[fg, 1:], target_bboxes[fg])
        return self.loss_reg(
            fg_deltas, reg_targets,
            weight=weights[fg, None].expand(-1, 4),
            avg_factor=int(fg.sum()))

    # ------------------------------------------------------------------ #
    # inference
    # ------------------------------------------------------------------ #
    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = True) -> InstanceList:
        """Detections of a batch.

        Args:
            x (tuple[Tensor]): Feature maps.
            rpn_results_list (list[InstanceData]): Proposals of every image.
            batch_data_samples (list[DetDataSample]): Samples with
                ``img_shape`` and (for ``rescale``) ``scale_factor``.
            rescale (bool): Return boxes in the original image's frame.

        Returns:
            list[InstanceData]: Per image ``bboxes`` ``Tensor[D, 4]``,
            ``scores`` ``Tensor[D]``, ``labels`` ``Tensor[D]``.
        """
        proposals = self._proposal_boxes(rpn_results_list)
        rois = bbox2roi(proposals)
        out = self.forward(x, rois)
        scores = torch.stack(
            [logits.softmax(dim=1) for logits in out['refine_logits']]).mean(0)
        if self.with_reg and rois.size(0) > 0:
            deltas = out['bbox_deltas']
            if not self.reg_class_agnostic:
                boxes = self.bbox_coder.decode(
                    rois[:, None, 1:].expand(-1, self.num_classes, 4)
                    .reshape(-1, 4), deltas.reshape(-1, 4))
                boxes = boxes.view(-1, self.num_classes * 4)
            else:
                boxes = self.bbox_coder.decode(rois[:, 1:], deltas)
        else:
            boxes = rois[:, 1:]
        counts = [p.size(0) for p in proposals]
        return [
            self._predict_single(b, s, sample.metainfo, rescale)
            for b, s, sample in zip(
                boxes.split(counts), scores.split(counts), batch_data_samples)
        ]

    def _predict_single(self, boxes: Tensor, scores: Tensor, img_meta: dict,
                        rescale: bool) -> InstanceData:
        """Threshold, NMS and rescaling of one image.

        Args:
            boxes (Tensor[R, 4] | Tensor[R, 4C]): Boxes in the input frame.
            scores (Tensor[R, C+1]): Averaged refinement scores.
            img_meta (dict): ``img_shape``, ``scale_factor``.
            rescale (bool): Divide the boxes by ``scale_factor``.

        Returns:
            InstanceData: ``bboxes``, ``scores``, ``labels``.
        """
        results = InstanceData()
        if boxes.size(0) == 0:
            results.bboxes = boxes.new_zeros(0, 4)
            results.scores = scores.new_zeros(0)
            results.labels = torch.zeros(0, dtype=torch.long,
                                         device=boxes.device)
            return results
        box_dim = 4
        boxes = boxes.reshape(boxes.size(0), -1, box_dim)
        if 'img_shape' in img_meta:
            h, w = img_meta['img_shape'][:2]
            boxes = torch.stack([
                boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)
            ], dim=-1)
        boxes = boxes.reshape(boxes.size(0), -1)
        if rescale:
            scale_factor = img_meta.get('scale_factor')
            if scale_factor is None:
                raise ValueError('rescale=True needs scale_factor in the '
                                 'data sample metainfo')
            inv = [1. / s for s in scale_factor]
            boxes = scale_boxes(boxes.view(-1, box_dim), inv).view(
                boxes.size(0), -1)
        cfg = self.test_cfg
        dets, labels = multiclass_nms(
            boxes, scores, cfg.score_thr, cfg.nms, max_num=cfg.max_per_img)
        results.bboxes = dets[:, :4]
        results.scores = dets[:, -1]
        results.labels = labels
        return results


__all__ = ['OICRHead']
