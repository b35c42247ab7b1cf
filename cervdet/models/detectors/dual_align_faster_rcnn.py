"""Semi-supervised Faster R-CNN with dual alignment of Chai et al., "Deep
semi-supervised metric learning with dual alignment for cervical cancer cell
detection" (ISBI 2022).

A student Faster R-CNN trained by gradient descent and its EMA teacher (the
teacher is updated by mmdet's ``MeanTeacherHook``), both built from one
``detector`` config as in mmdet's ``SoftTeacher``. The loss is::

    L = L_sup + lambda(t) * (loss_pml + loss_pml_u + loss_pmb + loss_pmb_u)

- ``L_sup``: the student's Faster R-CNN losses on the labeled branch
  (``sup_`` prefixed, as :class:`~mmdet.models.SemiBaseDetector` does);
- labeled proposals: the student's RoI features of the ground-truth boxes and
  of the positive proposals its RoI head sampled (assigned gt labels) ->
  :class:`~cervdet.models.layers.MetricProjectionHead` -> ``embeds_l``;
- unlabeled proposals: the teacher's predictions on the weak view with a
  score ``> score_thr`` (pseudo labels), mapped to the strong view with the
  homography matrices, RoI features from the student on the strong view ->
  ``embeds_u`` with the teacher scores as confidences;
- proxy alignment (``loss_pml``, ``loss_pml_u``):
  :class:`~cervdet.models.losses.ProxyMetricLoss`;
- prototype alignment (``loss_pmb``, ``loss_pmb_u``): confidence-guided batch
  prototypes against the class means of a
  :class:`~cervdet.models.layers.PrototypeMemoryBank` that stores the
  ground-truth-guided labeled prototypes of previous steps;
- ``lambda(t)``: :func:`~cervdet.models.losses.sigmoid_rampup` of the number
  of training steps taken (a persistent counter, so resuming keeps it).
"""
import copy
from typing import Dict, Tuple

import torch
from torch import Tensor

from mmdet.models.detectors.semi_base import SemiBaseDetector
from mmdet.models.utils import (filter_gt_instances, rename_loss_dict,
                                reweight_loss_dict, unpack_gt_instances)
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from ..layers.prototype_memory_bank import class_prototypes
from ..losses.prototype_alignment_loss import sigmoid_rampup

LABELED_CONFIDENCES = ('score', 'one')
LABELED_SOURCES = ('gt+pos', 'gt')


@MODELS.register_module()
class DualAlignFasterRCNN(SemiBaseDetector):
    """Dual-alignment semi-supervised Faster R-CNN (Chai et al., 2022).

    Args:
        detector (dict): Config of the student / teacher two-stage detector
            (a Faster R-CNN with a ``roi_head.bbox_roi_extractor``).
        semi_train_cfg (dict): Keys ``score_thr`` (pseudo-label threshold,
            0.5), ``rampup_iters`` (ramp-up length ``T`` of ``lambda``;
            ``<= 0`` disables it), ``sup_weight`` (1.0), ``unsup_weight``
            (extra weight of the four metric terms, 1.0),
            ``min_pseudo_bbox_wh`` ((1e-2, 1e-2)), ``freeze_teacher`` (True).
        semi_test_cfg (dict): ``predict_on`` ``'teacher'`` or ``'student'``.
        metric_head (dict): Config of the projection head; ``in_channels`` is
            filled from the RoI extractor (``C * h * w``).
        proxy_loss (dict): Config of the proxy metric loss;
            ``num_classes``/``embed_dim`` are filled in.
        prototype_loss (dict): Config of the prototype alignment loss.
        bank_size (int): Entries of the prototype memory bank (1024).
        labeled_source (str): Labeled proposals embedded: ``'gt+pos'`` (the
            ground-truth boxes and the positive proposals sampled by the
            student's RoI head, labeled with their assigned gt) or ``'gt'``
            (the ground-truth boxes only).
        labeled_confidence (str): Weights of the labeled confidence-guided
            prototypes: ``'score'`` (the student's detached class score of
            the ground-truth class) or ``'one'``.
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
                 labeled_source: str = 'gt+pos',
                 labeled_confidence: str = 'score',
                 with_proxy: bool = True,
                 with_prototype: bool = True,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            detector=detector,
            semi_train_cfg=semi_train_cfg or dict(),
            semi_test_cfg=semi_test_cfg or dict(),
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if labeled_confidence not in LABELED_CONFIDENCES:
            raise ValueError(f'labeled_confidence must be one of '
                             f'{LABELED_CONFIDENCES}; got '
                             f'{labeled_confidence!r}')
        if labeled_source not in LABELED_SOURCES:
            raise ValueError(f'labeled_source must be one of '
                             f'{LABELED_SOURCES}; got {labeled_source!r}')
        roi_head = self.student.roi_head
        if not roi_head.with_bbox or roi_head.with_mask:
            raise ValueError('DualAlignFasterRCNN needs a box-only RoI head '
                             '(a Faster R-CNN)')
        extractor = roi_head.bbox_roi_extractor
        out_size = extractor.roi_layers[0].output_size
        out_size = (out_size, out_size) if isinstance(out_size, int) \
            else tuple(out_size)
        self.num_classes = int(roi_head.bbox_head.num_classes)
        self.metric_head = MODELS.build(
            dict(metric_head,
                 in_channels=extractor.out_channels * out_size[0] *
                 out_size[1]))
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
    def score_thr(self) -> float:
        """Pseudo-label confidence threshold (0.5 in the paper)."""
        return float(self.semi_train_cfg.get('score_thr', 0.5))

    def rampup_weight(self) -> float:
        """``lambda(t)`` for the current step ``t = num_iters``."""
        return sigmoid_rampup(
            int(self.num_iters), self.semi_train_cfg.get('rampup_iters', 0))

    def roi_embeddings(self, x: Tuple[Tensor],
                       boxes: list) -> Tuple[Tensor, Tensor]:
        """Embed boxes with the student's RoI extractor and the metric head.

        Args:
            x (tuple[Tensor[B, C, H_l, W_l]]): Student neck features.
            boxes (list[Tensor[n_b, 4]]): Boxes (x1, y1, x2, y2) per image,
                in the input's pixel frame.

        Returns:
            tuple: ``embeds`` Tensor[N, D] (``N = sum n_b``) and ``rois``
            Tensor[N, 5] (batch index first).
        """
        extractor = self.student.roi_head.bbox_roi_extractor
        rois = bbox2roi(boxes)
        feats = extractor(x[:extractor.num_inputs], rois)  # [N, C, h, w]
        return self.metric_head(feats), rois

    def student_sup_loss(self, x: Tuple[Tensor],
                         batch_data_samples: SampleList) -> Tuple[dict, list]:
        """The student's Faster R-CNN losses from already extracted features.

        mmdet's ``TwoStageDetector.loss`` and ``StandardRoIHead.loss``
        (bbox branch) without ``extract_feat``, keeping the RoI head's
        sampling results for the labeled embeddings.

        Args:
            x (tuple[Tensor[B, C, H_l, W_l]]): Student neck features of the
                labeled batch.
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
            ``weights_l`` Tensor[N] (detached student score of the label,
            or 1).
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
        embeds_l, rois = self.roi_embeddings(x, boxes)
        if self.labeled_confidence == 'one' or rois.shape[0] == 0:
            weights_l = embeds_l.new_ones(embeds_l.shape[0])
        else:
            with torch.no_grad():
                cls_score = self.student.roi_head._bbox_forward(
                    x, rois)['cls_score']  # [N, C + 1]
                weights_l = cls_score.softmax(dim=1).gather(
                    1, labels_l[:, None]).squeeze(1)
        return embeds_l, labels_l, weights_l

    def unlabeled_embeddings(
            self, batch_inputs: Tensor, batch_data_samples: SampleList,
            like: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Embeddings of the pseudo-labelled boxes on the strong view.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Strong (student) view.
            batch_data_samples (list[DetDataSample]): With the projected
                pseudo instances in ``gt_instances`` (``bboxes``, ``labels``,
                ``scores``) already filtered by ``score_thr``.
            like (Tensor): Tensor whose graph the empty result attaches to.

        Returns:
            tuple: ``embeds_u`` Tensor[M, D], ``labels_u`` Tensor[M] and
            ``weights_u`` Tensor[M] (teacher scores).
        """
        boxes = [s.gt_instances.bboxes for s in batch_data_samples]
        labels_u = torch.cat([s.gt_instances.labels for s in
                              batch_data_samples]).long()
        weights_u = torch.cat([s.gt_instances.scores for s in
                               batch_data_samples]).detach()
        if labels_u.numel() == 0:  # skip the student's strong-view forward
            embeds_u = like.new_zeros(0, self.metric_head.out_channels) + \
                like.sum() * 0.
            return embeds_u, labels_u.to(like.device), weights_u.to(like)
        x_u = self.student.extract_feat(batch_inputs)
        embeds_u, _ = self.roi_embeddings(x_u, boxes)
        return embeds_u, labels_u, weights_u

    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        """Supervised losses plus the ramped dual alignment losses.

        Args:
            multi_batch_inputs (dict[str, Tensor[B, 3, H, W]]): Branches
                ``sup``, ``unsup_teacher``, ``unsup_student``.
            multi_batch_data_samples (dict[str, list[DetDataSample]]): The
                branches' data samples (unlabeled ones with
                ``homography_matrix`` in their metainfo).

        Returns:
            dict: ``sup_*`` losses, ``loss_pml``, ``loss_pml_u`` (with
            ``with_proxy``), ``loss_pmb``, ``loss_pmb_u`` (with
            ``with_prototype``), and the non-summed logs ``num_pseudo``
            (pseudo-labelled boxes per unlabeled image), ``bank_fill`` and
            ``lambda_u``.
        """
        lam = self.rampup_weight() * self.semi_train_cfg.get(
            'unsup_weight', 1.)
        sup_inputs = multi_batch_inputs['sup']
        sup_samples = multi_batch_data_samples['sup']
        x = self.student.extract_feat(sup_inputs)
        losses, sampling_results = self.student_sup_loss(x, sup_samples)
        embeds_l, labels_l, weights_l = self.labeled_embeddings(
            x, sup_samples, sampling_results)

        # pseudo labels: teacher on the weak view -> strong view, > score_thr
        pseudo_samples, _ = self.get_pseudo_instances(
            multi_batch_inputs['unsup_teacher'],
            multi_batch_data_samples['unsup_teacher'])
        student_samples = self.project_pseudo_instances(
            pseudo_samples, multi_batch_data_samples['unsup_student'])
        student_samples = filter_gt_instances(
            student_samples, score_thr=self.score_thr)
        embeds_u, labels_u, weights_u = self.unlabeled_embeddings(
            multi_batch_inputs['unsup_student'], student_samples, embeds_l)

        if self.with_proxy:
            pml = self.proxy_loss(embeds_l, labels_l, embeds_u, labels_u,
                                  weights_u)
            losses.update({k: lam * v for k, v in pml.items()})
        if self.with_prototype:
            C = self.num_classes
            bank_means, bank_present = self.bank.class_means()  # [C, D]
            # confidence-guided prototypes of the labeled / unlabeled batch
            protos_l, present_l = class_prototypes(embeds_l, labels_l, C,
                                                   weights_l)
            protos_u, present_u = class_prototypes(embeds_u, labels_u, C,
                                                   weights_u)
            losses['loss_pmb'] = lam * self.prototype_loss(
                protos_l, present_l, bank_means, bank_present)
            losses['loss_pmb_u'] = lam * self.prototype_loss(
                protos_u, present_u, bank_means, bank_present)
            # gt-guided labeled prototypes enter the bank after the losses
            # (collective: every rank, every step, possibly with 0 entries)
            protos_gt, present_gt = class_prototypes(
                embeds_l.detach(), labels_l, C)
            self.bank.push(protos_gt[present_gt],
                           torch.arange(C, device=protos_gt.device)[present_gt])
            losses['bank_fill'] = self.bank.fill.float()
        num_unsup = max(len(student_samples), 1)
        losses['num_pseudo'] = embeds_l.new_tensor(labels_u.numel() /
                                                   num_unsup)
        losses['lambda_u'] = embeds_l.new_tensor(lam)
        self.num_iters += 1
        return losses


__all__ = ['DualAlignFasterRCNN', 'LABELED_CONFIDENCES', 'LABELED_SOURCES']
