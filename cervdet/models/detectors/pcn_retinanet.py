"""RetinaNet distilled from a frozen Patch Correction Network (PCN).

Fei et al., "Robust Cervical Abnormal Cell Detection via Distillation from
Local-Scale Consistency Refinement", MICCAI 2023 (stage 3 of the method).
"""
import copy
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.detectors import RetinaNet
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..layers.patch_crop import crop_patches, patch_regions
from ..layers.topk_suspicious import flatten_dense_outputs, select_topk_suspicious
from ..utils import (
    FrozenTeacherMixin,
    build_teacher,
    convert_normalization,
    load_teacher_checkpoint,
    preprocessor_normalization,
)


@MODELS.register_module()
class PCNRetinaNet(FrozenTeacherMixin, RetinaNet):
    """RetinaNet trained with the PCN's ranking and RCC losses (stage 3).

    Training step, on top of RetinaNet's ``loss_cls`` and ``loss_bbox``:

    1. the top-K suspicious boxes of every image are selected from the
       detached head outputs (score threshold, per-class NMS, K best; fewer or
       none when an image has fewer);
    2. their ROI features are pooled from the FPN with ``roi_extractor``
       (level by box scale): ``Tensor[N, C_fpn, 7, 7]``, ``N <= B*K``;
    3. the same boxes, in the same order, are cut from the input batch in
       memory (:func:`~cervdet.models.layers.crop_patches`, regions from
       ``patch_cfg``), resized to the PCN input and converted from the
       detector's normalisation to the PCN's;
    4. the frozen PCN (eval mode, no gradient) gives refined scores ``s_c``
       ``Tensor[N]`` and local-scale features ``Tensor[N, C2, 56, 56]`` (its
       backbone stage ``pcn_local_stage``);
    5. ``loss_rank`` (:class:`~cervdet.models.losses.RankingLoss`) between the
       detector's differentiable score ``s_d`` of each box's class and
       ``s_c``; ``loss_rcc`` (:class:`~cervdet.models.losses.RCCLoss`) between
       the ROI features and the PCN's local-scale features.

    Inference is RetinaNet's: the PCN is never run. The PCN is a frozen
    teacher (:class:`~cervdet.models.utils.FrozenTeacherMixin`): no
    gradient, eval mode under ``train()``, left out of ``state_dict()``, so a
    checkpoint of this model loads into the plain ``RetinaNet`` config with
    no missing or unexpected key. Loading a checkpoint without PCN weights
    into this model is not reported as missing keys either (the PCN's
    weights come from ``pcn_checkpoint``).

    The distillation follows the distiller interface of
    :class:`~cervdet.engine.hooks.DistillationHook` (``teacher`` is the PCN,
    ``distill_weight``, ``distill_enabled``; the model's own weights are the
    student's), so that hook can warm up or stop ``loss_rank`` and
    ``loss_rcc`` (with ``validate_teacher=False``: the PCN is a classifier).
    Without the hook both stay at their defaults (weight 1, enabled).

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor,
        init_cfg: As :class:`mmdet.models.RetinaNet`.
        pcn (dict): Config of the PCN, an mmpretrain classifier, e.g.
            ``dict(type='mmpretrain.ImageClassifier', backbone=dict(
            type='SEResNeXt', depth=50, ...), ...)`` with its own
            ``data_preprocessor`` (mean/std/``to_rgb`` of its training). Its
            backbone's ``out_indices`` are extended with ``pcn_local_stage``.
        pcn_checkpoint (str, optional): Stage-2 checkpoint of the PCN, loaded
            (strictly) by :meth:`init_weights`. ``None`` leaves the PCN random
            (tests only; a warning is issued).
        roi_extractor (dict, optional): ROI extractor on the FPN levels;
            default ``SingleRoIExtractor`` with 7x7 RoIAlign over strides
            ``(8, 16, 32, 64)``.
        loss_rank (dict, optional): Ranking loss; ``None`` disables it.
        loss_rcc (dict, optional): RCC loss; ``None`` disables it.
        distill_cfg (dict, optional): Box selection: ``topk`` (10),
            ``score_thr`` (0.05), ``nms_pre`` (1000), ``nms``
            (``dict(type='nms', iou_threshold=0.5)``), ``min_bbox_size`` (0).
        patch_cfg (dict, optional): PCN patches: ``size`` (224, the PCN
            input), ``scale`` (context factor, 1.5), ``square`` (True),
            ``min_size`` (0); see :func:`~cervdet.models.layers.patch_regions`.
            Must match the patches the PCN was trained on
            (``tools/dataset_converters/build_pcn_patches.py``).
        pcn_score (str): How ``s_c`` is read from the PCN's softmax:
            ``'abnormal'``: ``1 - p[pcn_normal_index]`` (binary or multi-class
            PCN); ``'class'``: the probability of the box's detector class
            (PCN classes = detector classes with the normal class inserted at
            ``pcn_normal_index``).
        pcn_normal_index (int): Index of the normal class in the PCN's output.
        pcn_local_stage (int): PCN backbone stage whose feature map is the
            local-scale feature (0: first stage, 56x56 at a 224 input).

    Attributes:
        distill_weight (float): Multiplier of ``loss_rank`` and
            ``loss_rcc``. Defaults to 1.
        distill_enabled (bool): When False the PCN is not run and
            ``loss_rank`` / ``loss_rcc`` are zero. Defaults to True.
    """

    #: The model's own weights are the student's (see DistillationHook).
    student_prefix = ''

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 pcn: ConfigType,
                 pcn_checkpoint: Optional[str] = None,
                 roi_extractor: OptConfigType = None,
                 loss_rank: OptConfigType = dict(
                     type='RankingLoss', margin=0.05, loss_weight=0.25),
                 loss_rcc: OptConfigType = dict(
                     type='RCCLoss', loss_weight=1.0),
                 distill_cfg: OptConfigType = None,
                 patch_cfg: OptConfigType = None,
                 pcn_score: str = 'abnormal',
                 pcn_normal_index: int = 0,
                 pcn_local_stage: int = 0,
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
        if not getattr(self.bbox_head, 'use_sigmoid_cls', False):
            raise ValueError('PCNRetinaNet needs a sigmoid-classification '
                             'head (bbox_head.loss_cls.use_sigmoid=True)')

        pcn_model, self._pcn_local_pos = self._build_pcn(pcn, pcn_local_stage)
        self.add_teacher('pcn', pcn_model)
        self.pcn_checkpoint = pcn_checkpoint
        self.pcn_local_stage = pcn_local_stage
        self.distill_weight = 1.0
        self.distill_enabled = True

        if roi_extractor is None:
            roi_extractor = dict(
                type='SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=self.bbox_head.in_channels,
                featmap_strides=[8, 16, 32, 64])
        self.roi_extractor = MODELS.build(roi_extractor)
        self.loss_rank = MODELS.build(loss_rank) if loss_rank else None
        self.loss_rcc = MODELS.build(loss_rcc) if loss_rcc else None

        self.distill_cfg = dict(
            topk=10,
            score_thr=0.05,
            nms_pre=1000,
            nms=dict(type='nms', iou_threshold=0.5),
            min_bbox_size=0.)
        self.distill_cfg.update(distill_cfg or {})
        if int(self.distill_cfg['topk']) < 1:
            raise ValueError('model.distill_cfg.topk must be >= 1, got '
                             f'{self.distill_cfg["topk"]}')
        self.patch_cfg = dict(size=224, scale=1.5, square=True, min_size=0.)
        self.patch_cfg.update(patch_cfg or {})

        if pcn_score not in ('abnormal', 'class'):
            raise ValueError("model.pcn_score must be 'abnormal' or 'class', "
                             f'got {pcn_score!r}')
        num_pcn = getattr(getattr(self.pcn, 'head', None), 'num_classes',
                          None)
        if num_pcn is not None and not 0 <= pcn_normal_index < num_pcn:
            raise ValueError(f'model.pcn_normal_index={pcn_normal_index} is '
                             f'not a class of the PCN ({num_pcn} classes)')
        if pcn_score == 'class' and num_pcn is not None and \
                num_pcn != self.bbox_head.num_classes + 1:
            raise ValueError(
                "model.pcn_score='class' needs a PCN with the detector's "
                f'{self.bbox_head.num_classes} classes plus the normal class '
                f'({self.bbox_head.num_classes + 1}); the PCN has {num_pcn}. '
                "Use pcn_score='abnormal' for a binary PCN.")
        self.pcn_score = pcn_score
        self.pcn_normal_index = pcn_normal_index

    # ------------------------------------------------------------------
    # The frozen PCN
    # ------------------------------------------------------------------
    @staticmethod
    def _build_pcn(pcn: ConfigType, local_stage: int) -> Tuple[nn.Module, int]:
        """Build the PCN with ``local_stage`` among its backbone outputs.

        Returns:
            tuple: the PCN and the position of the local-scale feature in its
            backbone's output tuple.
        """
        if isinstance(pcn, nn.Module):
            model, out_indices = pcn, getattr(pcn.backbone, 'out_indices',
                                              None)
            if out_indices is None or local_stage not in out_indices:
                raise ValueError(
                    f'the PCN backbone must output stage {local_stage} '
                    '(out_indices); build it from a config instead')
        else:
            pcn = copy.deepcopy(dict(pcn))
            backbone = dict(pcn['backbone'])
            out_indices = backbone.get('out_indices', (3, ))
            out_indices = tuple(sorted(set(out_indices) | {local_stage}))
            if max(out_indices) == local_stage:
                raise ValueError(
                    f'model.pcn_local_stage={local_stage} must be an earlier '
                    'stage than the one the PCN head classifies '
                    f'(out_indices {backbone.get("out_indices")})')
            backbone['out_indices'] = out_indices
            # Every PCN weight comes from ``pcn_checkpoint`` (stage 2): its
            # ImageNet initialisation (stage-2 config) is not downloaded.
            backbone.pop('init_cfg', None)
            pcn.pop('init_cfg', None)
            pcn['backbone'] = backbone
            # Build the classifier and its parts (backbone, head, data
            # preprocessor) in mmpretrain's scope, whatever the config's
            # default scope; 'mmpretrain.ImageClassifier' or 'ImageClassifier'.
        model = build_teacher(pcn, default_scope='mmpretrain')
        return model, list(out_indices).index(local_stage)

    @property
    def teacher(self) -> nn.Module:
        """The PCN (the distiller interface's name for it)."""
        return self.pcn

    @property
    def teacher_ckpt(self) -> Optional[str]:
        """The PCN's checkpoint (the distiller interface's name)."""
        return self.pcn_checkpoint

    def init_weights(self) -> None:
        """Initialise the detector, then load the PCN's stage-2 checkpoint."""
        super().init_weights()
        if self.pcn_checkpoint is None:
            warnings.warn('PCNRetinaNet: model.pcn_checkpoint is None, the PCN '
                          'keeps random weights; set it to the stage-2 '
                          'checkpoint (tools/train.py '
                          'configs/pcn_retinanet/pcn_...) for distillation.')
            return
        load_teacher_checkpoint(
            self.pcn, self.pcn_checkpoint, key='model.pcn_checkpoint',
            teacher_key='model.pcn',
            not_found_hint='Train the PCN first (stage 2: tools/train.py '
            'configs/pcn_retinanet/<config>.py) and pass its checkpoint, e.g. '
            '--cfg-options model.pcn_checkpoint=work_dirs/<pcn run>/'
            'epoch_N.pth',
            mismatch_hint='The PCN config of this detector must be the '
            'stage-2 model config (backbone, head classes).')
        self.pcn.eval()

    def pcn_inputs(self, batch_inputs: Tensor, rois: Tensor) -> Tensor:
        """Cut the PCN's input patches out of the detector's input batch.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Detector inputs, normalised by
                the detector's data preprocessor.
            rois (Tensor[N, 5]): ``(batch_index, x1, y1, x2, y2)`` boxes in
                input pixels.

        Returns:
            Tensor[N, 3, S, S]: Patches (``S = patch_cfg.size``) normalised
            for the PCN. Outside the image, patches show the detector's mean
            colour (normalised input 0), as ``build_pcn_patches.py`` pads.
        """
        cfg = self.patch_cfg
        regions = patch_regions(rois[:, 1:], scale=cfg['scale'],
                                square=cfg['square'],
                                min_size=cfg['min_size'])
        crops = crop_patches(
            batch_inputs, torch.cat([rois[:, :1], regions], dim=1),
            out_size=int(cfg['size']))
        # Images are loaded BGR; each preprocessor may convert to RGB.
        return convert_normalization(
            crops, preprocessor_normalization(self.data_preprocessor),
            preprocessor_normalization(self.pcn.data_preprocessor))

    @torch.no_grad()
    def pcn_forward(self, patches: Tensor) -> Tuple[Tensor, Tensor]:
        """Run the frozen PCN.

        Args:
            patches (Tensor[N, 3, S, S]): PCN-normalised patches.

        Returns:
            tuple: ``probs`` Tensor[N, num_pcn_classes] (softmax) and
            ``local_feats`` Tensor[N, C2, H2, W2] (e.g. ``[N, 256, 56, 56]``
            for SE-ResNeXt-50 at 224).
        """
        feats = self.pcn.backbone(patches)
        if isinstance(feats, Tensor):
            feats = (feats, )
        local_feats = feats[self._pcn_local_pos]
        x = self.pcn.neck(feats) if getattr(self.pcn, 'with_neck',
                                            False) else feats
        logits = self.pcn.head(x)
        return logits.softmax(dim=-1), local_feats

    def refined_scores(self, probs: Tensor, labels: Tensor) -> Tensor:
        """``s_c`` of every box from the PCN's softmax (see ``pcn_score``).

        Args:
            probs (Tensor[N, num_pcn_classes]): PCN softmax.
            labels (Tensor[N]): Detector class of every box.

        Returns:
            Tensor[N]: Refined scores.
        """
        if self.pcn_score == 'abnormal':
            return 1. - probs[:, self.pcn_normal_index]
        pcn_cls = labels + (labels >= self.pcn_normal_index).long()
        return probs.gather(1, pcn_cls[:, None])[:, 0]

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """RetinaNet's losses plus ``loss_rank`` and ``loss_rcc``.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Normalised input batch.
            batch_data_samples (list[DetDataSample]): Ground truth and metas.

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, ``loss_rank``, ``loss_rcc``
            (those enabled) and ``pcn_boxes`` (boxes distilled per image,
            logged only).
        """
        x = self.extract_feat(batch_inputs)
        outs = self.bbox_head(x)
        (batch_gt_instances, batch_gt_instances_ignore,
         batch_img_metas) = unpack_gt_instances(batch_data_samples)
        losses = self.bbox_head.loss_by_feat(*outs, batch_gt_instances,
                                             batch_img_metas,
                                             batch_gt_instances_ignore)
        if self.loss_rank is not None or self.loss_rcc is not None:
            if self.distill_enabled:
                distill = self.distill_loss(batch_inputs, x, outs[0],
                                            outs[1], batch_img_metas)
                for key in ('loss_rank', 'loss_rcc'):
                    if key in distill:
                        distill[key] = distill[key] * self.distill_weight
            else:  # stopped by DistillationHook: same keys, no PCN forward
                zero = batch_inputs.new_zeros(())
                distill = dict(pcn_boxes=zero.clone())
                if self.loss_rank is not None:
                    distill['loss_rank'] = zero.clone()
                if self.loss_rcc is not None:
                    distill['loss_rcc'] = zero.clone()
            losses.update(distill)
        return losses

    def select_boxes(self, cls_scores, bbox_preds, batch_img_metas
                     ) -> Tuple[Dict[str, Tensor], Tensor]:
        """Top-K boxes of the current (detached) predictions.

        Args:
            cls_scores (list[Tensor[B, A*C, H_l, W_l]]): Head class logits.
            bbox_preds (list[Tensor[B, A*4, H_l, W_l]]): Head box deltas.
            batch_img_metas (list[dict]): Image metas (``img_shape``).

        Returns:
            tuple: the selection of
            :func:`~cervdet.models.layers.select_topk_suspicious` and the
            flattened class logits ``Tensor[B, M, C]`` (with gradient).
        """
        head = self.bbox_head
        cls_logits, deltas = flatten_dense_outputs(cls_scores, bbox_preds,
                                                   head.cls_out_channels)
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        priors = torch.cat(
            head.prior_generator.grid_priors(
                featmap_sizes, dtype=cls_logits.dtype,
                device=cls_logits.device))
        img_shapes = torch.tensor(
            [meta['img_shape'][:2] for meta in batch_img_metas],
            device=cls_logits.device)
        cfg = self.distill_cfg
        sel = select_topk_suspicious(
            cls_logits, deltas, priors, head.bbox_coder, img_shapes,
            topk=int(cfg['topk']), score_thr=float(cfg['score_thr']),
            nms_pre=int(cfg['nms_pre']), nms_cfg=cfg['nms'],
            min_bbox_size=float(cfg['min_bbox_size']))
        return sel, cls_logits

    def distill_loss(self, batch_inputs: Tensor, x: Tuple[Tensor],
                     cls_scores, bbox_preds, batch_img_metas) -> dict:
        """Ranking and RCC losses of the top-K boxes of every image.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Normalised input batch.
            x (tuple[Tensor]): FPN features.
            cls_scores (list[Tensor[B, A*C, H_l, W_l]]): Head class logits.
            bbox_preds (list[Tensor[B, A*4, H_l, W_l]]): Head box deltas.
            batch_img_metas (list[dict]): Image metas (``img_shape``).

        Returns:
            dict: ``loss_rank`` / ``loss_rcc`` (0 when no box was selected)
            and ``pcn_boxes``.
        """
        sel, cls_logits = self.select_boxes(cls_scores, bbox_preds,
                                            batch_img_metas)
        rois, n = sel['rois'], sel['rois'].shape[0]
        # s_d: the detector's differentiable score of each box's class.
        det_scores = cls_logits[sel['batch_idx'], sel['prior_idx'],
                                sel['labels']].sigmoid()
        num_lvls = self.roi_extractor.num_inputs
        roi_feats = self.roi_extractor(x[:num_lvls], rois)   # [N, C, 7, 7]
        if n > 0:
            with torch.no_grad():
                probs, pcn_feats = self.pcn_forward(
                    self.pcn_inputs(batch_inputs, rois))
            pcn_scores = self.refined_scores(probs, sel['labels'])
        else:
            pcn_scores = det_scores.new_zeros(0)
            pcn_feats = roi_feats.new_zeros((0, 1))
        losses = dict()
        if self.loss_rank is not None:
            losses['loss_rank'] = self.loss_rank(det_scores, pcn_scores)
        if self.loss_rcc is not None:
            losses['loss_rcc'] = self.loss_rcc(roi_feats, pcn_feats)
        losses['pcn_boxes'] = det_scores.new_tensor(
            n / max(len(batch_img_metas), 1))
        return losses


__all__ = ['PCNRetinaNet']
