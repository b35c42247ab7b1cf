"""A detector that trains a student detector from a frozen teacher's features.

:class:`FeatureDistiller` taps one student module and one teacher module per
*feature pair* with forward hooks and hands both features to that pair's
distillation loss, a module registered in mmdet's ``MODELS``
(:class:`~cervdet.models.losses.FGDLoss` is one). The loss protocol, which
is all a new distillation loss has to follow:

- **Built** with ``MODELS.build(pair['loss'])`` and held in the distiller's
  ``nn.ModuleDict`` ``distill_losses`` (its parameters are trained with the
  student and saved in training checkpoints, never in student-only ones).
- **Called** once per training step and pair, positionally::

      loss = distill_losses[name](preds_S, preds_T, fg_bboxes,
                                  batch_input_shape)

  ``preds_S`` / ``preds_T``: the recorded student / teacher features
  (Tensors, shapes as the modules give them; the distiller checks
  nothing, the loss must); the teacher's are computed under ``no_grad``.
  ``fg_bboxes``: ``B`` foreground boxes per image, ``(x1, y1, x2, y2)`` in
  pixels of the padded input (Tensor ``[n_i, 4]`` or an mmdet box
  structure, ``n_i`` may be 0; see ``fg_boxes``). ``batch_input_shape``:
  ``(H_in, W_in)`` of the padded batch.
- **Returns** a scalar Tensor, which the distiller multiplies by
  ``distill_weight`` and logs as ``loss_distill_<name>`` (MMEngine sums every
  key containing ``loss`` into the training loss). When distillation is off
  the loss is not called; ``loss_distill_<name>`` is then a zero connected to
  each loss parameter (DDP sees a gradient for all of them).

``docs/architecture.md`` ("How to add a distillation loss") walks through a
new loss and its config. :class:`~cervdet.engine.hooks.DistillationHook`
schedules ``distill_weight`` / ``distill_enabled`` and writes student-only
checkpoints.

The file is a little over 500 lines because the distiller, its feature
specs and its five foreground-box sources are one protocol: read together,
they are what a new loss receives.
"""
import re
from collections import OrderedDict
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, OptSampleList, SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.logging import print_log
from torch import Tensor

from ..utils import (
    FrozenTeacherMixin,
    build_teacher,
    convert_normalization,
    preprocessor_normalization,
    same_normalization,
)

#: Sources of the foreground boxes (``FeatureDistiller.fg_boxes``).
FG_BOX_SOURCES = ('gt', 'teacher', 'gt_or_teacher', 'student', 'gt+student')

_FEATURE_SPEC = re.compile(r'^(?P<path>[A-Za-z_][\w.]*?)(?:\[(?P<index>-?\d+)\])?$')


def parse_feature_spec(spec: str) -> Tuple[str, Optional[int]]:
    """Split ``'neck.fpn_convs.0.conv'`` or ``'neck[2]'`` into path and index.

    Args:
        spec (str): A module path (dots between names, as in
            ``model.named_modules()``), optionally followed by ``[i]`` to take
            the ``i``-th element of a module returning a tuple (e.g. the
            ``i``-th level of a neck).

    Returns:
        tuple[str, int | None]: Module path and output index.
    """
    if not isinstance(spec, str):
        raise TypeError(f'feature spec must be a str, got {spec!r}')
    m = _FEATURE_SPEC.match(spec.strip())
    if m is None:
        raise ValueError(
            f'bad feature spec {spec!r}: write a module path such as '
            "'neck.fpn_convs.0.conv', or a module and an output index such "
            "as 'neck[0]' (the first level a neck returns)")
    index = m.group('index')
    return m.group('path'), None if index is None else int(index)


def gt_boxes_known(data_sample: DetDataSample) -> bool:
    """Whether the ground-truth boxes of a sample describe its image.

    True when the sample has at least one ground-truth box, or when its
    ``has_boxes`` metainfo (:class:`~cervdet.datasets.WeakCocoDataset`) is
    true: a box-annotated image without boxes is a negative field, whose
    all-background mask is right. False for an image whose boxes were
    dropped (image-level labels only, ``has_boxes=False``) or that has no
    box and no ``has_boxes`` metainfo.

    Args:
        data_sample (DetDataSample): A training sample.

    Returns:
        bool: Use the sample's ground-truth boxes for the mask.
    """
    if bool(data_sample.metainfo.get('has_boxes', False)):
        return True
    if 'gt_instances' not in data_sample:
        return False
    gt = data_sample.gt_instances
    return 'bboxes' in gt and len(gt) > 0


def select_teacher_boxes(pred_instances, score_thr: float,
                         max_boxes: int) -> Tensor:
    """The teacher detections that make a foreground mask.

    Args:
        pred_instances (InstanceData): The teacher's ``pred_instances`` of
            one image: ``bboxes`` ``Tensor[D, 4]`` (x1, y1, x2, y2 in pixels
            of the network input) and ``scores`` ``Tensor[D]``.
        score_thr (float): Keep detections scoring ``>= score_thr``.
        max_boxes (int): Keep at most the ``max_boxes`` highest-scoring
            ones (``<= 0``: no limit).

    Returns:
        Tensor: ``Tensor[n, 4]`` boxes (class-agnostic, detached), the
        highest score first; ``n`` may be 0.
    """
    boxes = get_box_tensor(pred_instances.bboxes).detach().float()
    scores = pred_instances.scores.detach().reshape(-1)
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    keep = scores >= score_thr
    boxes, scores = boxes[keep], scores[keep]
    order = scores.sort(descending=True, stable=True).indices
    if max_boxes > 0:
        order = order[:max_boxes]
    return boxes[order].reshape(-1, 4)


@MODELS.register_module()
class FeatureDistiller(FrozenTeacherMixin, BaseDetector):
    """Train ``student`` with feature distillation losses from a ``teacher``.

    Training runs the teacher's ``extract_feat`` (no gradient) and the
    student's own ``loss`` on the same batch; forward hooks on the chosen
    modules record the features, and one distillation loss per feature
    pair (e.g. :class:`~cervdet.models.losses.FGDLoss`; the protocol is in
    this module's docstring) adds ``loss_distill_<name>`` to the student's
    losses. Prediction is the student's: validation and testing evaluate
    the student. Registered also as ``FGDDistiller``, its former name.

    Feature pairs name modules by path. Forward hooks (not a re-implemented
    ``extract_feat``) are used so any mmdet detector works unchanged and the
    student's features are computed once, inside its own ``loss``:

    - ``'neck.fpn_convs.0.conv'``: the output of that module (FPN level 0
      of RetinaNet / Faster R-CNN);
    - ``'neck[0]'``: element 0 of the tuple the neck returns, for levels
      that are no module's output (SSD's L2-normalised conv4_3 and fc7).

    The teacher is built from its config (a path, an ``'mmdet::'`` path or a
    model dict) and loaded strictly from ``teacher_ckpt``
    (:func:`~cervdet.models.utils.build_teacher`); it is frozen
    (``requires_grad=False``), kept in eval mode by :meth:`train` (BN
    statistics never change), never initialised by ``init_weights`` and
    left out of ``state_dict()`` (:class:`~cervdet.models.utils.
    FrozenTeacherMixin`: checkpoints hold no teacher; those that do, from
    before, still load). Teacher features are taken from
    ``teacher.extract_feat``, so teacher modules must lie in its backbone
    or neck.

    Foreground boxes (``fg_boxes``): FGD's mask (Eq. (2)-(3)) comes from
    ground-truth boxes. With image-level labels most training images have
    none and would be all background, so the boxes may come from the
    teacher's own detections instead:

    - ``'gt'``: ``gt_instances.bboxes`` of every image (FGD);
    - ``'teacher'``: the teacher's detections of every image;
    - ``'gt_or_teacher'``: ground-truth boxes where they are known
      (:func:`gt_boxes_known`: the image has boxes, or ``has_boxes`` is
      true), the teacher's detections for the other images;
    - ``'student'``: the boxes the student sets in its ``distill_boxes``
      attribute during its ``loss`` (``B`` tensors ``Tensor[n_i, 4]`` in
      input pixels; :class:`~cervdet.models.detectors.LDWSCCD`: the top
      region per image class under its aggregated refinement output);
    - ``'gt+student'``: the union of the known ground-truth boxes and the
      student's boxes (LD-WSCCD: Eq. (9)'s ground-truth mask plus the
      regions the aggregated refinement output finds, Sec. III.D.3).

    Teacher detections are those of ``teacher.predict(..., rescale=False)``
    (its ``test_cfg``: score threshold, NMS, ``max_per_img``), run under
    ``no_grad`` in eval mode on new ``DetDataSample`` objects that hold only
    the metainfo of the student's samples (the student's samples are not
    modified), then filtered by :func:`select_teacher_boxes`
    (``teacher_score_thr``, ``teacher_max_boxes``); they are class-agnostic
    boxes in pixels of the network input, the frame of ground-truth boxes.
    The teacher's forward hooks record its features during this
    ``predict``: the teacher's features are computed once per step either
    way. When ``fg_boxes`` is ``'teacher'`` or ``'gt_or_teacher'``, the
    losses also hold ``distill_teacher_boxes`` (not a loss: logged only),
    the mean number of teacher boxes per image that took them (0 when none
    did).

    The student and teacher see the same padded batch. When their data
    preprocessors normalise differently (e.g. SSD's ``std=1`` vs.
    RetinaNet's ImageNet std), the student's normalised batch is mapped to
    the teacher's normalisation (and channel order) before the teacher runs
    (:func:`~cervdet.models.utils.convert_normalization`).

    Args:
        student (dict): Model config of the student detector (any mmdet
            detector; its ``data_preprocessor`` becomes the distiller's).
        teacher_cfg (str | dict): Teacher config file, ``'mmdet::...'``
            config, or model dict.
        teacher_ckpt (str): Checkpoint of the trained teacher.
        feature_pairs (list[dict]): One dict per distilled feature with keys
            ``name`` (loss key ``loss_distill_<name>``), ``student`` and
            ``teacher`` (feature specs, see above) and ``loss`` (the config
            of a distillation loss, e.g. ``dict(type='FGDLoss', ...)``).
        fg_boxes (str): Boxes of the foreground mask, one of
            :data:`FG_BOX_SOURCES` (see above). Defaults to ``'gt'``.
        teacher_score_thr (float): Lowest score of a teacher detection used
            for the mask (on top of the teacher's ``test_cfg.score_thr``).
            Defaults to 0.3.
        teacher_max_boxes (int): At most this many teacher detections per
            image (the highest scoring); ``<= 0``: no limit. Defaults to
            100.
        data_preprocessor (dict, optional): Must be None: the student's is
            used.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Attributes:
        distill_weight (float): Multiplier of every distillation loss (set
            by :class:`~cervdet.engine.hooks.DistillationHook` for
            warm-up). Defaults to 1.
        distill_enabled (bool): When False the teacher is not run and the
            distillation losses are zero (set by the hook to stop
            distillation).
    """

    def __init__(self,
                 student: ConfigType,
                 teacher_cfg: Union[str, ConfigType],
                 teacher_ckpt: str,
                 feature_pairs: Sequence[dict],
                 fg_boxes: str = 'gt',
                 teacher_score_thr: float = 0.3,
                 teacher_max_boxes: int = 100,
                 data_preprocessor: Optional[ConfigType] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if fg_boxes not in FG_BOX_SOURCES:
            raise ValueError(
                f'FeatureDistiller: fg_boxes must be one of {FG_BOX_SOURCES}, '
                f'got {fg_boxes!r}')
        if data_preprocessor is not None:
            raise ValueError(
                'FeatureDistiller: set the data preprocessor in model.student, '
                'not in model (the student\'s is used for the whole batch)')
        super().__init__(data_preprocessor=None, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        # The student's preprocessor serves the distiller (same object).
        self.data_preprocessor = self.student.data_preprocessor

        self.teacher_cfg = teacher_cfg if isinstance(teacher_cfg, str) \
            else 'dict'
        self.teacher_ckpt = teacher_ckpt
        self.add_teacher('teacher', build_teacher(
            teacher_cfg, teacher_ckpt, key='model.teacher_ckpt',
            not_found_hint='Train the teacher first (see '
            'configs/fgd/README.md) or fix model.teacher_ckpt.'))

        self._same_normalisation = same_normalization(
            preprocessor_normalization(self.data_preprocessor),
            preprocessor_normalization(self.teacher.data_preprocessor))
        if not self._same_normalisation:
            print_log(
                'FeatureDistiller: student and teacher normalise inputs '
                'differently; the teacher gets the batch converted to its '
                'own mean/std and channel order', logger='current')
        self.fg_boxes = fg_boxes
        self.teacher_score_thr = float(teacher_score_thr)
        self.teacher_max_boxes = int(teacher_max_boxes)
        self.distill_weight = 1.0
        self.distill_enabled = True
        self._recording = False
        self._records: Dict[Tuple[str, str], Tensor] = {}
        self.pair_names: List[str] = []
        losses = OrderedDict()
        if not feature_pairs:
            raise ValueError('FeatureDistiller: feature_pairs is empty; name '
                             'at least one student/teacher feature pair')
        for i, pair in enumerate(feature_pairs):
            missing = {'name', 'student', 'teacher', 'loss'} - set(pair)
            if missing:
                raise KeyError(
                    f'FeatureDistiller: feature_pairs[{i}] lacks '
                    f"{sorted(missing)}; each pair is dict(name='p3', "
                    "student='neck[0]', teacher='neck[0]', "
                    "loss=dict(type='FGDLoss', ...))")
            name = str(pair['name'])
            if name in losses:
                raise ValueError(
                    f'FeatureDistiller: feature pair name {name!r} is used '
                    'twice')
            self._register_tap('student', name, pair['student'], i)
            self._register_tap('teacher', name, pair['teacher'], i)
            losses[name] = MODELS.build(pair['loss'])
            self.pair_names.append(name)
        self.distill_losses = nn.ModuleDict(losses)

    # ----------------------------------------------------------- set-up ---
    def _register_tap(self, side: str, name: str, spec: str, i: int) -> None:
        model = self.student if side == 'student' else self.teacher
        path, index = parse_feature_spec(spec)
        try:
            module = model.get_submodule(path)
        except AttributeError:
            top = path.split('.')[0]
            children = [n for n, _ in model.named_children()]
            hint = ''
            if top in children:
                sub = model.get_submodule(top)
                names = [n for n, _ in sub.named_modules() if n][:40]
                hint = f'; modules under {top!r}: {names}'
            raise ValueError(
                f'FeatureDistiller: feature_pairs[{i}].{side}={spec!r}: '
                f'{type(model).__name__} has no module {path!r} (top-level '
                f'modules: {children}){hint}') from None
        module.register_forward_hook(
            partial(self._record, (side, name), index, spec))

    def _record(self, key: Tuple[str, str], index: Optional[int], spec: str,
                module: nn.Module, args, output) -> None:
        if not self._recording:
            return
        if index is not None:
            if not isinstance(output, (tuple, list)):
                raise TypeError(
                    f'FeatureDistiller: {spec!r} indexes the output of a module '
                    f'that returns a {type(output).__name__}; drop the [i]')
            output = output[index]
        elif not isinstance(output, Tensor):
            raise TypeError(
                f'FeatureDistiller: {spec!r} returns a {type(output).__name__}; '
                "pick one element with [i] (e.g. 'neck[0]')")
        self._records[key] = output

    def _teacher_inputs(self, inputs: Tensor) -> Tensor:
        """The student's normalised batch in the teacher's normalisation."""
        if self._same_normalisation:
            return inputs
        return convert_normalization(
            inputs, preprocessor_normalization(self.data_preprocessor),
            preprocessor_normalization(self.teacher.data_preprocessor))

    # ---------------------------------------------------------- forward ---
    def _teacher_features(self, inputs: Tensor) -> None:
        with torch.no_grad():
            self.teacher.extract_feat(self._teacher_inputs(inputs))

    def _teacher_boxes(self, inputs: Tensor,
                       batch_data_samples: SampleList) -> List[Tensor]:
        """The teacher's detections of a batch (features recorded too).

        Args:
            inputs (Tensor): ``Tensor[B, 3, H_in, W_in]``, the student's
                padded, normalised batch.
            batch_data_samples (list[DetDataSample]): The student's samples;
                only their metainfo is read (copied into new samples).

        Returns:
            list[Tensor]: ``B`` tensors ``Tensor[n_i, 4]``
            (:func:`select_teacher_boxes`).
        """
        samples = [DetDataSample(metainfo=dict(ds.metainfo))
                   for ds in batch_data_samples]
        with torch.no_grad():
            results = self.teacher.predict(
                self._teacher_inputs(inputs), samples, rescale=False)
        return [
            select_teacher_boxes(r.pred_instances, self.teacher_score_thr,
                                 self.teacher_max_boxes) for r in results
        ]

    def _uses_teacher_boxes(self, batch_data_samples: SampleList
                            ) -> List[bool]:
        """Per image, whether its mask comes from the teacher's boxes."""
        if self.fg_boxes in ('gt', 'student', 'gt+student'):
            return [False] * len(batch_data_samples)
        if self.fg_boxes == 'teacher':
            return [True] * len(batch_data_samples)
        return [not gt_boxes_known(ds) for ds in batch_data_samples]

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Student losses plus ``loss_distill_<name>`` per feature pair.

        Args:
            batch_inputs (Tensor): ``Tensor[B, 3, H_in, W_in]``, the padded,
                normalised batch.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (may be empty where the teacher gives the boxes).

        Returns:
            dict[str, Tensor]: The student's losses and the distillation
            losses (and ``distill_teacher_boxes`` when ``fg_boxes`` is
            ``'teacher'`` or ``'gt_or_teacher'``).
        """
        if not self.distill_enabled:
            losses = self.student.loss(batch_inputs, batch_data_samples)
            losses.update(self._zero_distill_losses())
            return losses
        use_teacher = self._uses_teacher_boxes(batch_data_samples)
        self._records = {}
        self._recording = True
        try:
            if any(use_teacher):
                teacher_boxes = self._teacher_boxes(batch_inputs,
                                                    batch_data_samples)
            else:
                self._teacher_features(batch_inputs)
            losses = self.student.loss(batch_inputs, batch_data_samples)
        finally:
            self._recording = False
        records, self._records = self._records, {}
        if self.fg_boxes in ('student', 'gt+student'):
            fg_bboxes = self._student_boxes(batch_data_samples,
                                            batch_inputs.device)
        else:
            fg_bboxes = [
                teacher_boxes[i] if use_teacher[i] else ds.gt_instances.bboxes
                for i, ds in enumerate(batch_data_samples)
            ]
        batch_input_shape = tuple(batch_inputs.shape[-2:])
        for name in self.pair_names:
            for side in ('student', 'teacher'):
                if (side, name) not in records:
                    where = 'extract_feat' if side == 'teacher' else 'loss'
                    raise RuntimeError(
                        f'FeatureDistiller: the {side} module of feature pair '
                        f'{name!r} did not run in the {side}\'s {where}; pick '
                        'a backbone or neck module')
            loss = self.distill_losses[name](records[('student', name)],
                                             records[('teacher', name)],
                                             fg_bboxes, batch_input_shape)
            losses[f'loss_distill_{name}'] = loss * self.distill_weight
        if self.fg_boxes in ('teacher', 'gt_or_teacher'):
            counts = [len(b) for b, t in zip(fg_bboxes, use_teacher) if t]
            losses['distill_teacher_boxes'] = batch_inputs.new_tensor(
                sum(counts) / max(len(counts), 1))
        return losses

    def _student_boxes(self, batch_data_samples: SampleList,
                       device) -> List[Tensor]:
        """Mask boxes of ``fg_boxes='student'`` / ``'gt+student'``.

        Returns:
            list[Tensor]: ``B`` tensors ``Tensor[n_i, 4]``: the student's
            ``distill_boxes`` (after its ``loss``), preceded by the image's
            ground-truth boxes where they are known for ``'gt+student'``.
        """
        boxes = getattr(self.student, 'distill_boxes', None)
        if boxes is None or len(boxes) != len(batch_data_samples):
            raise RuntimeError(
                f'FeatureDistiller: fg_boxes={self.fg_boxes!r} needs a student '
                'that sets `distill_boxes` (one Tensor[n, 4] per image) in '
                f'its loss; {type(self.student).__name__} does not (use the '
                "LDWSCCD detector, or fg_boxes='gt' / 'gt_or_teacher')")
        out = []
        for ds, b in zip(batch_data_samples, boxes):
            b = get_box_tensor(b).detach().float().to(device).reshape(-1, 4)
            if self.fg_boxes == 'gt+student' and gt_boxes_known(ds) and \
                    'gt_instances' in ds and len(ds.gt_instances) > 0:
                gt = get_box_tensor(ds.gt_instances.bboxes).float().to(device)
                b = torch.cat([gt.reshape(-1, 4), b])
            out.append(b)
        return out

    def _zero_distill_losses(self) -> Dict[str, Tensor]:
        """Zero distillation losses that touch every loss parameter.

        Keeps the log keys after distillation stops, and lets DDP (without
        ``find_unused_parameters``) see a gradient for every parameter.
        """
        out = {}
        device = next(self.student.parameters()).device
        for name in self.pair_names:
            params = list(self.distill_losses[name].parameters())
            zero = torch.zeros((), device=device)
            out[f'loss_distill_{name}'] = zero + sum(p.sum() * 0 for p in params)
        if self.fg_boxes in ('teacher', 'gt_or_teacher'):
            out['distill_teacher_boxes'] = torch.zeros((), device=device)
        return out

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """The student's predictions."""
        return self.student.predict(batch_inputs, batch_data_samples,
                                    rescale=rescale)

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None):
        """The student's raw head outputs."""
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor):
        """The student's features."""
        return self.student.extract_feat(batch_inputs)

    def student_state_dict(self) -> 'OrderedDict[str, Tensor]':
        """The student's weights, keys as in the plain student model."""
        return self.student.state_dict()


def extract_student_state_dict(state_dict: Dict[str, Tensor],
                               prefix: str = 'student.'
                               ) -> 'OrderedDict[str, Tensor]':
    """Keys of ``state_dict`` under ``prefix``, with the prefix removed.

    Turns a :class:`FeatureDistiller` state dict into one that loads into
    the plain student detector (teacher and distillation losses, e.g. FGD's
    align convs and GcBlocks, are dropped).
    """
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                      if k.startswith(prefix))
    if not out:
        raise KeyError(f'no key starts with {prefix!r}: not a '
                       'FeatureDistiller (FGDDistiller) checkpoint')
    return out


# The former name: configs and checkpoints written for it keep working.
FGDDistiller = FeatureDistiller
MODELS.register_module(name='FGDDistiller', module=FeatureDistiller)
