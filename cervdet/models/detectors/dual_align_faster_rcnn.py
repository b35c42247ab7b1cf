"""Semi-supervised Faster R-CNN with dual alignment of Chai et al., "Deep
semi-supervised metric learning with dual alignment for cervical cancer cell
detection" (ISBI 2022).

One Faster R-CNN trained on a labeled and an unlabeled batch (Sec. 2.3,
Eq. 9)::

    L = L_sup + lambda(t) * (loss_pml + loss_pml_u + loss_pmb + loss_pmb_u)

- ``L_sup``: the Faster R-CNN losses on the labeled branch (``sup_``
  prefixed, as :class:`~mmdet.models.SemiBaseDetector` does);
- proposal features ``H`` (Sec. 2.1): by default the output of the detection
  head's shared fully connected layers (``feature_source='bbox_head'``);
  ``'roi_extractor'`` takes the RoI-pooled feature instead (an option);
  :class:`~cervdet.models.layers.MetricProjectionHead` maps ``H`` to the
  metric space, Eq. (1);
- labeled proposals: the ground-truth boxes and the positive proposals the
  RoI head sampled (assigned gt labels) -> ``embeds_l``; their confidence
  ``q_i`` of Eq. (4) is the network's detached score of the label;
- unlabeled proposals, ``pseudo_labeler='self'`` (the paper, Eq. 3: "the
  label is determined by thresholding the network's prediction", 0.5 in
  Sec. 2.3): the network's own RPN proposals on the unlabeled image, each
  labeled with its best foreground class when the network's own (detached)
  score of that class is ``> score_thr``; the score is its ``q_i``. One view
  of the image (branch ``unsup``), no teacher.
  ``pseudo_labeler='ema_teacher'`` (an option, not the paper): an EMA
  teacher (mmdet's ``MeanTeacherHook``) predicts on a weak view, its
  detections above ``score_thr`` are mapped to a strong view (branches
  ``unsup_teacher`` / ``unsup_student``), as mmdet's ``SoftTeacher``;
- proxy alignment (``loss_pml``, ``loss_pml_u``, Eq. 2-3):
  :class:`~cervdet.models.losses.ProxyMetricLoss`;
- prototype alignment (``loss_pmb``, ``loss_pmb_u``, Eq. 4-8):
  confidence-guided batch prototypes against the class means of a
  :class:`~cervdet.models.layers.PrototypeMemoryBank` that stores the
  ground-truth-guided labeled prototypes of previous steps
  (:class:`~cervdet.models.losses.PrototypeAlignmentLoss`);
- ``lambda(t)``: :func:`~cervdet.models.losses.sigmoid_rampup` of the number
  of training steps taken (a persistent counter, so resuming keeps it).

The network is called ``student`` in both modes (same checkpoint layout);
with ``pseudo_labeler='self'`` there is no ``teacher``.

One module (over 500 lines): the detector's training step of Eq. 9 wires
the supervised, pseudo-label and both alignment terms and updates the memory
bank; the formulas live in ``models/losses`` and ``models/layers``.
"""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors.base import BaseDetector
from mmdet.models.detectors.semi_base import SemiBaseDetector
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.utils import (
    filter_gt_instances,
    rename_loss_dict,
    reweight_loss_dict,
    unpack_gt_instances,
)
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..layers.prototype_memory_bank import class_prototypes
from ..losses.prototype_alignment_loss import sigmoid_rampup
from ..losses.proxy_metric_loss import select_pseudo_labels

LABELED_CONFIDENCES = ('score', 'one')
LABELED_SOURCES = ('gt+pos', 'gt')
PSEUDO_LABELERS = ('self', 'ema_teacher')
FEATURE_SOURCES = ('bbox_head', 'roi_extractor')
UNSUP_BRANCH = 'unsup'


def bbox_head_features(bbox_head: ConvFCBBoxHead,
                       roi_feats: Tensor) -> Tuple[Tensor, Tensor]:
    """The proposal feature ``H`` a ``ConvFCBBoxHead`` computes (output of
    its shared convs / fcs) and its classification logits, in one pass.

    The same layers as ``ConvFCBBoxHead.forward``; the regression branch is
    skipped.

    Args:
        bbox_head (ConvFCBBoxHead): e.g. mmdet's ``Shared2FCBBoxHead``; needs
            at least one shared fc.
        roi_feats (Tensor[N, C, h, w]): RoI-pooled features.

    Returns:
        tuple: ``H`` Tensor[N, F] (``F = bbox_head.shared_out_channels``,
        1024 in mmdet's Faster R-CNN) and ``cls_score`` Tensor[N, C + 1]
        (logits).
    """
    x = roi_feats
    for conv in bbox_head.shared_convs:
        x = conv(x)
    if bbox_head.with_avg_pool:
        x = bbox_head.avg_pool(x)
    x = x.flatten(1)
    for fc in bbox_head.shared_fcs:
        x = bbox_head.relu(fc(x))
    x_cls = x
    for conv in bbox_head.cls_convs:
        x_cls = conv(x_cls)
    if x_cls.dim() > 2:
        if bbox_head.with_avg_pool:
            x_cls = bbox_head.avg_pool(x_cls)
        x_cls = x_cls.flatten(1)
    for fc in bbox_head.cls_fcs:
        x_cls = bbox_head.relu(fc(x_cls))
    return x, bbox_head.fc_cls(x_cls)


@MODELS.register_module()
class DualAlignFasterRCNN(SemiBaseDetector):
    """Dual-alignment semi-supervised Faster R-CNN (Chai et al., 2022).

    Args:
        detector (dict): Config of the two-stage detector (a Faster R-CNN
            with a ``roi_head.bbox_roi_extractor``).
        semi_train_cfg (dict): Keys ``score_thr`` (pseudo-label threshold,
            0.5, Sec. 2.3), ``rampup_iters`` (ramp-up length ``T`` of
            ``lambda``; ``<= 0`` disables it), ``sup_weight`` (1.0),
            ``unsup_weight`` (extra weight of the four metric terms, 1.0),
            ``unsup_proposal`` (RPN proposal config on the unlabeled images
            with ``pseudo_labeler='self'``; defaults to the detector's
            ``test_cfg.rpn``), and with ``pseudo_labeler='ema_teacher'``
            ``min_pseudo_bbox_wh`` ((1e-2, 1e-2)) and ``freeze_teacher``
            (True).
        semi_test_cfg (dict): ``predict_on`` ``'teacher'`` or ``'student'``
            (only ``'student'`` exists with ``pseudo_labeler='self'``, and
            is then the default).
        metric_head (dict): Config of the projection head; ``in_channels`` is
            filled from ``H``.
        proxy_loss (dict): Config of the proxy metric loss;
            ``num_classes``/``embed_dim``/``score_thr`` are filled in.
        prototype_loss (dict): Config of the prototype alignment loss.
        bank_size (int): Entries of the prototype memory bank (1024,
            Sec. 2.3).
        pseudo_labeler (str): ``'self'`` (the paper: the network's own
            prediction thresholded, no teacher) or ``'ema_teacher'`` (an EMA
            teacher on a weak view, an option).
        feature_source (str): Proposal feature ``H`` of Eq. (1):
            ``'bbox_head'`` (the detection head's shared-fc output, the
            paper's "proposal feature generated by the detection head") or
            ``'roi_extractor'`` (the RoI-pooled feature ``C * h * w``).
        labeled_source (str): Labeled proposals embedded: ``'gt+pos'`` (the
            ground-truth boxes and the positive proposals sampled by the
            RoI head, labeled with their assigned gt) or ``'gt'``.
        labeled_confidence (str): ``q_i`` of the labeled confidence-guided
            prototypes: ``'score'`` (the network's detached class score of
            the label, Eq. 4) or ``'one'``.
        with_proxy (bool): Use the proxy alignment terms.
        with_prototype (bool): Use the prototype alignment terms (and the
            bank).
        data_preprocessor (dict, optional): Multi-branch data preprocessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 detector: ConfigType,
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 metric_head: ConfigType = dict(
                     type='MetricProjectionHead',
                     hidden_channels=1024,
                     out_channels=128),
                 proxy_loss: ConfigType = dict(type='ProxyMetricLoss'),
                 prototype_loss: ConfigType = dict(
                     type='PrototypeAlignmentLoss', margin=1.0),
                 bank_size: int = 1024,
                 pseudo_labeler: str = 'self',
                 feature_source: str = 'bbox_head',
                 labeled_source: str = 'gt+pos',
                 labeled_confidence: str = 'score',
                 with_proxy: bool = True,
                 with_prototype: bool = True,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        for name, value, allowed in (
                ('pseudo_labeler', pseudo_labeler, PSEUDO_LABELERS),
                ('feature_source', feature_source, FEATURE_SOURCES),
                ('labeled_confidence', labeled_confidence,
                 LABELED_CONFIDENCES),
                ('labeled_source', labeled_source, LABELED_SOURCES)):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {allowed}; got '
                                 f'{value!r}')
        semi_train_cfg = semi_train_cfg or dict()
        semi_test_cfg = semi_test_cfg or dict()
        self.pseudo_labeler = pseudo_labeler
        if pseudo_labeler == 'ema_teacher':
            super().__init__(
                detector=detector,
                semi_train_cfg=semi_train_cfg,
                semi_test_cfg=semi_test_cfg,
                data_preprocessor=data_preprocessor,
                init_cfg=init_cfg)
        else:
            for key in ('predict_on', 'forward_on', 'extract_feat_on'):
                if semi_test_cfg.get(key, 'student') != 'student':
                    raise ValueError(
                        f"semi_test_cfg.{key}={semi_test_cfg[key]!r}, but "
                        "pseudo_labeler='self' trains one network and no "
                        "teacher: set it to 'student' (or drop it), or use "
                        "pseudo_labeler='ema_teacher'")
            # no teacher: skip SemiBaseDetector.__init__ (it builds one)
            BaseDetector.__init__(
                self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
            self.student = MODELS.build(detector)
            self.semi_train_cfg = semi_train_cfg
            self.semi_test_cfg = semi_test_cfg
        roi_head = self.student.roi_head
        if not roi_head.with_bbox or roi_head.with_mask:
            raise ValueError('DualAlignFasterRCNN needs a box-only RoI head '
                             '(a Faster R-CNN)')
        self.feature_source = feature_source
        self.num_classes = int(roi_head.bbox_head.num_classes)
        self.metric_head = MODELS.build(
            dict(metric_head, in_channels=self._feature_channels()))
        embed_dim = self.metric_head.out_channels
        self.with_proxy = bool(with_proxy)
        self.with_prototype = bool(with_prototype)
        self.labeled_source = labeled_source
        self.labeled_confidence = labeled_confidence
        if self.with_proxy:
            self.proxy_loss = MODELS.build(
                dict(proxy_loss,
                     num_classes=self.num_classes,
                     embed_dim=embed_dim,
                     score_thr=self.score_thr))
        if self.with_prototype:
            self.prototype_loss = MODELS.build(prototype_loss)
            self.bank = MODELS.build(
                dict(type='PrototypeMemoryBank',
                     num_classes=self.num_classes,
                     embed_dim=embed_dim,
                     size=bank_size))
        # training steps taken, for lambda(t); saved with checkpoints
        self.register_buffer('num_iters', torch.zeros((), dtype=torch.long))

    @property
    def with_teacher(self) -> bool:
        """Whether an EMA teacher exists (``pseudo_labeler='ema_teacher'``)."""
        return self.pseudo_labeler == 'ema_teacher'

    @property
    def score_thr(self) -> float:
        """Pseudo-label confidence threshold (0.5 in the paper)."""
        return float(self.semi_train_cfg.get('score_thr', 0.5))

    def _feature_channels(self) -> int:
        """Size of the flattened proposal feature ``H``."""
        roi_head = self.student.roi_head
        if self.feature_source == 'bbox_head':
            head = roi_head.bbox_head
            if not isinstance(head, ConvFCBBoxHead) or \
                    head.num_shared_fcs < 1:
                raise ValueError(
                    "feature_source='bbox_head' needs a ConvFCBBoxHead with "
                    'shared fcs (e.g. Shared2FCBBoxHead); got '
                    f'{type(head).__name__}: use '
                    "feature_source='roi_extractor'")
            return int(head.shared_out_channels)
        if roi_head.with_shared_head:
            raise ValueError("feature_source='roi_extractor' does not "
                             'support a shared_head; use '
                             "feature_source='bbox_head'")
        extractor = roi_head.bbox_roi_extractor
        out_size = extractor.roi_layers[0].output_size
        out_size = (out_size, out_size) if isinstance(out_size, int) \
            else tuple(out_size)
        return extractor.out_channels * out_size[0] * out_size[1]

    def rampup_weight(self) -> float:
        """``lambda(t)`` for the current step ``t = num_iters``."""
        return sigmoid_rampup(
            int(self.num_iters), self.semi_train_cfg.get('rampup_iters', 0))

    def proposal_features(self, x: Tuple[Tensor], boxes: List[Tensor],
                          with_scores: bool = False
                          ) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """Proposal features ``H`` (Eq. 1) of boxes, from the network.

        Args:
            x (tuple[Tensor[B, C, H_l, W_l]]): Neck features.
            boxes (list[Tensor[n_b, 4]]): Boxes (x1, y1, x2, y2) per image,
                in the input's pixel frame.
            with_scores (bool): Also return the detached class
                probabilities of every box.

        Returns:
            tuple: ``H`` Tensor[N, F] (``N = sum n_b``), ``scores``
            Tensor[N, C + 1] (softmax, background last) or None, and
            ``rois`` Tensor[N, 5] (batch index first).
        """
        roi_head = self.student.roi_head
        extractor = roi_head.bbox_roi_extractor
        rois = bbox2roi(boxes)
        roi_feats = extractor(x[:extractor.num_inputs], rois)
        if roi_head.with_shared_head:
            roi_feats = roi_head.shared_head(roi_feats)
        scores = None
        if self.feature_source == 'bbox_head':
            feats, cls_score = bbox_head_features(roi_head.bbox_head,
                                                  roi_feats)
            if with_scores:
                scores = F.softmax(cls_score.detach(), dim=-1)
        else:
            feats = roi_feats.flatten(1)
            if with_scores:
                with torch.no_grad():
                    cls_score, _ = roi_head.bbox_head(roi_feats)
                scores = F.softmax(cls_score, dim=-1)
        return feats, scores, rois

    def roi_embeddings(self, x: Tuple[Tensor],
                       boxes: list) -> Tuple[Tensor, Tensor]:
        """Embed boxes: proposal features -> metric head.

        Args:
            x (tuple[Tensor[B, C, H_l, W_l]]): Neck features.
            boxes (list[Tensor[n_b, 4]]): Boxes per image.

        Returns:
            tuple: ``embeds`` Tensor[N, D] and ``rois`` Tensor[N, 5].
        """
        feats, _, rois = self.proposal_features(x, boxes)
        return self.metric_head(feats), rois

    def student_sup_loss(self, x: Tuple[Tensor],
                         batch_data_samples: SampleList) -> Tuple[dict, list]:
        """The Faster R-CNN losses from already extracted features.

        mmdet's ``TwoStageDetector.loss`` and ``StandardRoIHead.loss``
        (bbox branch) without ``extract_feat``, keeping the RoI head's
        sampling results for the labeled embeddings.

        Args:
            x (tuple[Tensor[B, C, H_l, W_l]]): Neck features of the labeled
                batch.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``.

        Returns:
            tuple: ``sup_`` prefixed losses and the per-image
            :class:`SamplingResult` list.
        """
        student = self.student
        roi_head = student.roi_head
        losses = dict()
        proposal_cfg = student.train_cfg.get('rpn_proposal',
                                             student.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = student.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)

        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = roi_head.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i],
                batch_gt_instances_ignore[i])
            sampling_results.append(
                roi_head.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[lvl_feat[i][None] for lvl_feat in x]))
        losses.update(roi_head.bbox_loss(x, sampling_results)['loss_bbox'])
        sup_weight = self.semi_train_cfg.get('sup_weight', 1.)
        return rename_loss_dict('sup_', reweight_loss_dict(
            losses, sup_weight)), sampling_results

    def labeled_embeddings(
            self, x: Tuple[Tensor], batch_data_samples: SampleList,
            sampling_results: list) -> Tuple[Tensor, Tensor, Tensor]:
        """Embeddings, labels and confidences of the labeled proposals: the
        ground-truth boxes, plus (``labeled_source='gt+pos'``) the positive
        proposals the RoI head sampled, with their assigned gt labels.

        Returns:
            tuple: ``embeds_l`` Tensor[N, D], ``labels_l`` Tensor[N] and
            ``weights_l`` Tensor[N] (``q_i`` of Eq. 4: the detached score
            of the label, or 1).
        """
        boxes, labels = [], []
        for sample, res in zip(batch_data_samples, sampling_results):
            boxes.append(sample.gt_instances.bboxes)
            labels.append(sample.gt_instances.labels)
            if self.labeled_source == 'gt+pos':
                # the sampler may add the gts as proposals: not twice
                extra = ~res.pos_is_gt.bool()
                boxes[-1] = torch.cat([boxes[-1], res.pos_priors[extra]])
                labels[-1] = torch.cat([labels[-1],
                                        res.pos_gt_labels[extra]])
        labels_l = torch.cat(labels).long()
        with_scores = self.labeled_confidence == 'score'
        feats, scores, _ = self.proposal_features(x, boxes, with_scores)
        embeds_l = self.metric_head(feats)
        if not with_scores or labels_l.numel() == 0:
            weights_l = embeds_l.new_ones(embeds_l.shape[0])
        else:
            weights_l = scores.gather(1, labels_l[:, None]).squeeze(1)
        return embeds_l, labels_l, weights_l

    def self_pseudo_embeddings(
            self, batch_inputs: Tensor,
            batch_data_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """Pseudo labels from the network's own prediction (Eq. 3).

        The network's RPN proposals on the unlabeled images; every proposal
        whose best foreground probability (detached) is ``> score_thr``
        keeps that class as its pseudo label and the probability as its
        confidence ``q_i`` (Eq. 4).

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Unlabeled images.
            batch_data_samples (list[DetDataSample]): Their data samples
                (``img_shape`` etc. in the metainfo; no instances needed).

        Returns:
            tuple: ``embeds_u`` Tensor[M, D], ``labels_u`` Tensor[M] and
            ``weights_u`` Tensor[M] (confidences).
        """
        student = self.student
        x_u = student.extract_feat(batch_inputs)
        proposal_cfg = self.semi_train_cfg.get('unsup_proposal',
                                               student.test_cfg.rpn)
        with torch.no_grad():
            rpn_outs = student.rpn_head(x_u)
            proposals = student.rpn_head.predict_by_feat(
                *rpn_outs,
                batch_img_metas=[s.metainfo for s in batch_data_samples],
                cfg=proposal_cfg,
                rescale=False)
        boxes = [p.bboxes.detach() for p in proposals]
        feats, scores, _ = self.proposal_features(x_u, boxes,
                                                  with_scores=True)
        labels, conf, keep = select_pseudo_labels(scores, self.num_classes,
                                                  self.score_thr)
        embeds_u = self.metric_head(feats[keep])
        return embeds_u, labels[keep], conf[keep]

    def teacher_pseudo_embeddings(
            self, multi_batch_inputs: Dict[str, Tensor],
            multi_batch_data_samples: Dict[str, SampleList],
            like: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Pseudo labels from the EMA teacher (``pseudo_labeler=
        'ema_teacher'``): its detections on the weak view with a score
        ``> score_thr``, mapped to the strong view with the homography
        matrices, embedded by the network on the strong view.

        Args:
            multi_batch_inputs (dict[str, Tensor[B, 3, H, W]]): Branches
                ``unsup_teacher`` (weak) and ``unsup_student`` (strong).
            multi_batch_data_samples (dict[str, list[DetDataSample]]):
                Their data samples (``homography_matrix`` in the metainfo).
            like (Tensor): Tensor whose graph the empty result attaches to.

        Returns:
            tuple: ``embeds_u`` Tensor[M, D], ``labels_u`` Tensor[M] and
            ``weights_u`` Tensor[M] (teacher scores).
        """
        pseudo_samples, _ = self.get_pseudo_instances(
            multi_batch_inputs['unsup_teacher'],
            multi_batch_data_samples['unsup_teacher'])
        samples = self.project_pseudo_instances(
            pseudo_samples, multi_batch_data_samples['unsup_student'])
        samples = filter_gt_instances(samples, score_thr=self.score_thr)
        boxes = [s.gt_instances.bboxes for s in samples]
        labels_u = torch.cat([s.gt_instances.labels for s in samples]).long()
        weights_u = torch.cat([s.gt_instances.scores
                               for s in samples]).detach()
        if labels_u.numel() == 0:  # skip the strong-view forward
            embeds_u = like.new_zeros(0, self.metric_head.out_channels) + \
                like.sum() * 0.
            return embeds_u, labels_u.to(like.device), weights_u.to(like)
        x_u = self.student.extract_feat(multi_batch_inputs['unsup_student'])
        embeds_u, _ = self.roi_embeddings(x_u, boxes)
        return embeds_u, labels_u, weights_u

    def _check_branches(self, multi_batch_inputs: Dict[str, Tensor]) -> None:
        """Clear error when the dataset's branches do not fit the labeler."""
        need = ('sup', UNSUP_BRANCH) if not self.with_teacher else \
            ('sup', 'unsup_teacher', 'unsup_student')
        missing = [b for b in need if b not in multi_batch_inputs]
        if missing:
            raise KeyError(
                f'DualAlignFasterRCNN(pseudo_labeler={self.pseudo_labeler!r})'
                f' needs the data branches {need}; the batch has '
                f'{sorted(multi_batch_inputs)} (missing {missing}). Set the '
                "datasets' MultiBranch branch_field and pipelines to match: "
                "'self' reads one unlabeled view from branch "
                f"'{UNSUP_BRANCH}' (configs/_base_/datasets/"
                "semi_cervical_mosaic_bethesda_512.py, unsup_pipeline), "
                "'ema_teacher' a weak and a strong view (teacher_"
                'unsup_pipeline there)')

    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        """Supervised losses plus the ramped dual alignment losses (Eq. 9).

        Args:
            multi_batch_inputs (dict[str, Tensor[B, 3, H, W]]): Branches
                ``sup`` and ``unsup`` (``pseudo_labeler='self'``) or ``sup``,
                ``unsup_teacher``, ``unsup_student`` (``'ema_teacher'``).
            multi_batch_data_samples (dict[str, list[DetDataSample]]): The
                branches' data samples.

        Returns:
            dict: ``sup_*`` losses, ``loss_pml``, ``loss_pml_u`` (with
            ``with_proxy``), ``loss_pmb``, ``loss_pmb_u`` (with
            ``with_prototype``), and the non-summed logs ``num_pseudo``
            (pseudo-labelled proposals per unlabeled image), ``bank_fill``
            and ``lambda_u``.
        """
        self._check_branches(multi_batch_inputs)
        lam = self.rampup_weight() * self.semi_train_cfg.get(
            'unsup_weight', 1.)
        sup_inputs = multi_batch_inputs['sup']
        sup_samples = multi_batch_data_samples['sup']
        x = self.student.extract_feat(sup_inputs)
        losses, sampling_results = self.student_sup_loss(x, sup_samples)
        embeds_l, labels_l, weights_l = self.labeled_embeddings(
            x, sup_samples, sampling_results)

        if self.with_teacher:
            embeds_u, labels_u, weights_u = self.teacher_pseudo_embeddings(
                multi_batch_inputs, multi_batch_data_samples, embeds_l)
            num_unsup = len(multi_batch_data_samples['unsup_student'])
        else:
            embeds_u, labels_u, weights_u = self.self_pseudo_embeddings(
                multi_batch_inputs[UNSUP_BRANCH],
                multi_batch_data_samples[UNSUP_BRANCH])
            num_unsup = len(multi_batch_data_samples[UNSUP_BRANCH])

        if self.with_proxy:  # Eq. (2), (3)
            pml = self.proxy_loss(embeds_l, labels_l, embeds_u, labels_u,
                                  weights_u)
            losses.update({k: lam * v for k, v in pml.items()})
        if self.with_prototype:
            C = self.num_classes
            bank_means, bank_present = self.bank.class_means()  # P^M [C, D]
            # confidence-guided prototypes P_L^cg, P_U^cg, Eq. (4)
            protos_l, present_l = class_prototypes(embeds_l, labels_l, C,
                                                   weights_l)
            protos_u, present_u = class_prototypes(embeds_u, labels_u, C,
                                                   weights_u)
            # Eq. (7), (8)
            losses['loss_pmb'] = lam * self.prototype_loss(
                protos_l, present_l, bank_means, bank_present)
            losses['loss_pmb_u'] = lam * self.prototype_loss(
                protos_u, present_u, bank_means, bank_present)
            # gt-guided labeled prototypes P_L^gg enter the bank after the
            # losses (collective: every rank, every step, maybe 0 entries)
            protos_gt, present_gt = class_prototypes(
                embeds_l.detach(), labels_l, C)
            classes = torch.arange(C, device=protos_gt.device)
            self.bank.push(protos_gt[present_gt], classes[present_gt])
            losses['bank_fill'] = self.bank.fill.float()
        losses['num_pseudo'] = embeds_l.new_tensor(labels_u.numel() /
                                                   max(num_unsup, 1))
        losses['lambda_u'] = embeds_l.new_tensor(lam)
        self.num_iters += 1
        return losses

    # --- inference and loading without a teacher -------------------------

    def _net(self, key: str):
        """The network a test-time call runs on (``semi_test_cfg[key]``)."""
        if self.with_teacher and \
                self.semi_test_cfg.get(key, 'teacher') == 'teacher':
            return self.teacher
        return self.student

    def predict(self, batch_inputs: Tensor,
                batch_data_samples: SampleList) -> SampleList:
        """Faster R-CNN prediction of the network (``predict_on``)."""
        return self._net('predict_on')(
            batch_inputs, batch_data_samples, mode='predict')

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        """Head outputs without post-processing (``forward_on``)."""
        return self._net('forward_on')(
            batch_inputs, batch_data_samples, mode='tensor')

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Neck features (``extract_feat_on``)."""
        return self._net('extract_feat_on').extract_feat(batch_inputs)

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: Union[List[str], str],
                              unexpected_keys: Union[List[str], str],
                              error_msgs: Union[List[str], str]) -> None:
        """Without a teacher: a plain detector checkpoint loads into
        ``student``; the ``teacher.*`` weights of an ``'ema_teacher'``
        checkpoint are dropped (the student is the trained network). With a
        teacher: mmdet's behaviour (a plain checkpoint loads into both)."""
        if not self.with_teacher:
            keys = [k for k in state_dict if k.startswith(prefix)]
            rel = [k[len(prefix):] for k in keys]
            if not any(r.startswith(('student.', 'teacher.')) for r in rel):
                own = {n for n, _ in self.named_parameters()} | \
                    {n for n, _ in self.named_buffers()}
                for k, r in zip(keys, rel):
                    if r not in own:  # a detector key
                        state_dict[f'{prefix}student.{r}'] = \
                            state_dict.pop(k)
            else:
                for k, r in zip(keys, rel):
                    if r.startswith('teacher.'):
                        state_dict.pop(k)
        return super()._load_from_state_dict(state_dict, prefix,
                                             local_metadata, strict,
                                             missing_keys, unexpected_keys,
                                             error_msgs)


__all__ = [
    'DualAlignFasterRCNN', 'bbox_head_features', 'LABELED_CONFIDENCES',
    'LABELED_SOURCES', 'PSEUDO_LABELERS', 'FEATURE_SOURCES'
]
