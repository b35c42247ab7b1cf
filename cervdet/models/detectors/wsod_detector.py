"""Weakly supervised detector on precomputed proposals (OICR family).

Tang et al., "Multiple Instance Detection Network with Online Instance
Classifier Refinement", CVPR 2017; LD-WSCCD (Yin et al., IEEE Access 2024)
for cervical cytology.
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

_PROPOSALS_FIX = (
    'add LoadProposals (and ProposalBroadcaster around the geometric '
    'transforms) to the pipeline; PackDetInputs then packs them as '
    'data_sample.proposals')
_LABELS_FIX = (
    "use a dataset that sets the 'img_labels' metainfo (e.g. WeakCocoDataset) "
    "and add 'img_labels' to PackDetInputs' meta_keys, or load box "
    'annotations (LoadAnnotations with_bbox=True) so the labels of '
    'gt_instances give the image labels')


def image_labels_from_sample(data_sample: DetDataSample,
                             num_classes: int) -> Tensor:
    """Multi-hot image labels of one data sample.

    Read from the ``img_labels`` field (metainfo or data; class indices, a
    list or ``Tensor[L]``, empty for a negative image) when present, else
    from the unique ``gt_instances.labels``.

    Args:
        data_sample (DetDataSample): The sample.
        num_classes (int): ``C``.

    Returns:
        Tensor[C]: Multi-hot labels (float), on the device of the sample's
        tensors when any.

    Raises:
        ValueError: When the sample has neither field, or an index is out of
            ``[0, C)``.
    """
    if 'img_labels' in data_sample:
        labels = data_sample.img_labels
        device = None
    elif ('gt_instances' in data_sample
          and 'labels' in data_sample.gt_instances):
        labels = data_sample.gt_instances.labels
        device = labels.device
    else:
        raise ValueError('WSODDetector needs image-level labels: the data '
                         "sample has neither an 'img_labels' field nor "
                         f'gt_instances.labels; {_LABELS_FIX}')
    if isinstance(labels, Tensor):
        device = labels.device
    labels = torch.as_tensor(labels, dtype=torch.long,
                             device=device).reshape(-1)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'image labels must be class indices in '
                         f'[0, {num_classes}); got {labels.tolist()}')
    multi_hot = torch.zeros(num_classes, device=labels.device)
    multi_hot[labels] = 1.
    return multi_hot


@MODELS.register_module()
class WSODDetector(BaseDetector):
    """Weakly supervised detector: backbone, optional neck, OICR head.

    Proposals are precomputed (selective search, EdgeBoxes, a class-agnostic
    cell detector, ...) and read from ``data_sample.proposals.bboxes``
    ``Tensor[P_i, 4]`` (or boxes of a ``BaseBoxes`` type) in the network
    input's frame; mmdet's ``LoadProposals`` + ``ProposalBroadcaster`` +
    ``PackDetInputs`` produce this. Image counts may differ, and may be 0
    (prediction is then empty; the image adds nothing to the losses).

    Image labels (training only): ``data_sample.img_labels`` (class indices)
    when the sample has that field, e.g. from ``WeakCocoDataset`` with
    ``'img_labels'`` in ``PackDetInputs``' ``meta_keys``; else the unique
    ``gt_instances.labels``. An image with no label is a negative field.
    Ground-truth boxes, when present, supervise the refinement stages
    directly (mixed supervision; see ``OICRHead.use_gt_bboxes``).

    Feature levels: the RoI extractor receives the (selected) levels and
    maps RoIs to them by scale (``featmap_strides``, one per level), e.g.
    FPN with ``featmap_strides=[4, 8, 16, 32]``. Levels of different widths
    cannot share one extractor: select one with ``feat_levels``, e.g. an SSD
    neck on VGG16 with ``feat_levels=(0, )`` -> the 512-channel stride-8
    map (``in_channels=512``, ``featmap_strides=[8]``).

    Args:
        backbone (dict): Backbone config.
        roi_head (dict): ``OICRHead`` config.
        neck (dict, optional): Neck config.
        feat_levels (Sequence[int], optional): Indices of the feature levels
            passed to the head (after the neck); ``None`` = all.
        train_cfg (dict, optional): Pseudo-label options overriding the
            head's (see ``OICRHead.train_cfg``).
        test_cfg (dict, optional): Head ``test_cfg`` (``score_thr``,
            ``nms``, ``max_per_img``).
        data_preprocessor (dict, optional): E.g. ``DetDataPreprocessor``.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 roi_head: ConfigType,
                 neck: OptConfigType = None,
                 feat_levels: Optional[Sequence[int]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.feat_levels = None if feat_levels is None else tuple(
            int(i) for i in feat_levels)
        roi_head = copy.deepcopy(roi_head)
        if train_cfg is not None:
            roi_head['train_cfg'] = {**(roi_head.get('train_cfg') or {}),
                                     **train_cfg}
        if test_cfg is not None:
            roi_head['test_cfg'] = {**(roi_head.get('test_cfg') or {}),
                                    **test_cfg}
        self.roi_head = MODELS.build(roi_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def num_classes(self) -> int:
        """Foreground classes of the head."""
        return self.roi_head.num_classes

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone (+ neck) features, restricted to ``feat_levels``.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Images.

        Returns:
            tuple[Tensor]: Feature maps ``Tensor[B, C_l, H_l, W_l]``.
        """
        x = self.backbone(batch_inputs)
        if self.with_neck:
            x = self.neck(x)
        if isinstance(x, Tensor):
            x = (x, )
        x = tuple(x)
        if self.feat_levels is not None:
            if max(self.feat_levels) >= len(x):
                raise ValueError(f'feat_levels {self.feat_levels} out of the '
                                 f'{len(x)} feature levels')
            x = tuple(x[i] for i in self.feat_levels)
        return x

    @staticmethod
    def get_proposals(batch_data_samples: SampleList) -> List[InstanceData]:
        """The ``proposals`` of every sample.

        Raises:
            ValueError: When a sample has no ``proposals`` field.
        """
        results = []
        for i, sample in enumerate(batch_data_samples):
            if 'proposals' not in sample or 'bboxes' not in sample.proposals:
                raise ValueError(
                    f'data sample {i} has no proposals: WSODDetector needs '
                    f'data_sample.proposals.bboxes; {_PROPOSALS_FIX}')
            results.append(sample.proposals)
        return results

    def get_img_labels(self, batch_data_samples: SampleList,
                       device: Union[str, torch.device]) -> Tensor:
        """Multi-hot labels ``Tensor[B, C]`` of a batch
        (:func:`image_labels_from_sample`)."""
        return torch.stack([
            image_labels_from_sample(s, self.num_classes).to(device)
            for s in batch_data_samples
        ]) if batch_data_samples else torch.zeros(
            0, self.num_classes, device=device)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Losses of a batch: ``loss_mil``, ``loss_ref{k}`` (``loss_reg``).

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Images.
            batch_data_samples (list[DetDataSample]): With ``proposals`` and
                image labels.

        Returns:
            dict[str, Tensor]: Losses.
        """
        proposals = self.get_proposals(batch_data_samples)
        img_labels = self.get_img_labels(batch_data_samples,
                                         batch_inputs.device)
        x = self.extract_feat(batch_inputs)
        return self.roi_head.loss(x, proposals, batch_data_samples,
                                  img_labels)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections of a batch, in ``pred_instances`` of the samples.

        Args:
            batch_inputs (Tensor[B, 3, H, W]): Images.
            batch_data_samples (list[DetDataSample]): With ``proposals``,
                ``img_shape`` and ``scale_factor``.
            rescale (bool): Boxes in the original image frame.

        Returns:
            list[DetDataSample]: ``pred_instances`` with ``bboxes``
            ``Tensor[D, 4]``, ``scores`` ``Tensor[D]``, ``labels``
            ``Tensor[D]``.
        """
        proposals = self.get_proposals(batch_data_samples)
        x = self.extract_feat(batch_inputs)
        results_list = self.roi_head.predict(
            x, proposals, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: OptConfigType = None) -> tuple:
        """Raw head outputs (``mode='tensor'``).

        Returns:
            tuple: ``(mil_cls_logits, mil_det_logits, refine_logits,
            bbox_deltas)`` as in ``OICRHead.forward``; without data samples
            (no proposals) the feature maps.
        """
        x = self.extract_feat(batch_inputs)
        if batch_data_samples is None:
            return x
        proposals = self.get_proposals(batch_data_samples)
        rois = bbox2roi([get_box_tensor(p.bboxes).float() for p in proposals])
        out = self.roi_head.forward(x, rois)
        return (out['mil_cls_logits'], out['mil_det_logits'],
                tuple(out['refine_logits']), out['bbox_deltas'])


__all__ = ['WSODDetector', 'image_labels_from_sample']
