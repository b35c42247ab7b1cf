"""A detector that trains a student detector with FGD from a frozen teacher."""
import os
import os.path as osp
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
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_checkpoint
from torch import Tensor

#: Sources of the boxes of FGD's foreground mask (``FGDDistiller.fg_boxes``).
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


def resolve_config_path(path: str) -> str:
    """File of a config given as a path or as ``'package::rel/path.py'``.

    ``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'`` resolves to the
    config shipped in the installed package (``<package>/.mim/configs/``).
    """
    if '::' in path:
        package, rel = path.split('::', 1)
        from mmengine.utils import get_installed_path
        try:
            root = get_installed_path(package)
        except Exception as e:  # not installed
            raise FileNotFoundError(
                f'config {path!r}: package {package!r} is not installed') from e
        full = osp.join(root, '.mim', 'configs', rel)
        if not osp.isfile(full):
            raise FileNotFoundError(
                f'config {path!r}: no file {full} in the installed '
                f'{package} package')
        return full
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config {path!r} not found (relative paths are resolved from the '
            f'working directory {os.getcwd()}; in a config file, write '
            "'{{ fileDirname }}/...' to make them relative to that file)")
    return path


def build_teacher_model_cfg(teacher_cfg: Union[str, dict]) -> ConfigDict:
    """The ``model`` section of a teacher config path, or a model dict."""
    if isinstance(teacher_cfg, str):
        cfg = Config.fromfile(resolve_config_path(teacher_cfg))
        if 'model' not in cfg:
            raise KeyError(f'teacher config {teacher_cfg!r} has no `model`')
        return ConfigDict(cfg.model)
    if isinstance(teacher_cfg, dict):
        if 'type' not in teacher_cfg and 'model' in teacher_cfg:
            return ConfigDict(teacher_cfg['model'])
        return ConfigDict(teacher_cfg)
    raise TypeError('FGDDistiller: teacher_cfg must be a config path, an '
                    f"'mmdet::' path or a model dict, got {type(teacher_cfg)}")


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


def _normalisation(
        preprocessor: nn.Module
) -> Tuple[bool, Optional[Tensor], Optional[Tensor], bool]:
    """(normalises, mean, std, converts BGR->RGB) of a data preprocessor."""
    enabled = bool(getattr(preprocessor, '_enable_normalize', False))
    mean = getattr(preprocessor, 'mean', None) if enabled else None
    std = getattr(preprocessor, 'std', None) if enabled else None
    return enabled, mean, std, bool(
        getattr(preprocessor, '_channel_conversion', False))


@MODELS.register_module()
class FGDDistiller(BaseDetector):
    """Train ``student`` with FGD losses from a frozen ``teacher``.

    Training runs the teacher's ``extract_feat`` (no gradient) and the
    student's own ``loss`` on the same batch; forward hooks on the chosen
    modules record the features, and one :class:`FGDLoss` per pair adds
    ``loss_fgd_<name>`` to the student's losses. Prediction is the
    student's: validation and testing evaluate the student.

    Feature pairs name modules by path. Forward hooks (not a re-implemented
    ``extract_feat``) are used so any mmdet detector works unchanged and the
    student's features are computed once, inside its own ``loss``:

    - ``'neck.fpn_convs.0.conv'``: the output of that module (FPN level 0
      of RetinaNet / Faster R-CNN);
    - ``'neck[0]'``: element 0 of the tuple the neck returns, for levels
      that are no module's output (SSD's L2-normalised conv4_3 and fc7).

    The teacher is built from its config (a path, an ``'mmdet::'`` path or a
    model dict) and loaded from ``teacher_ckpt``; it is frozen
    (``requires_grad=False``), kept in eval mode by :meth:`train` (BN
    statistics never change) and never initialised by ``init_weights``.
    Teacher features are taken from ``teacher.extract_feat``, so teacher
    modules must lie in its backbone or neck.

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
    way. When ``fg_boxes`` is not ``'gt'``, the losses also hold
    ``fgd_teacher_boxes`` (not a loss: logged only), the mean number of
    teacher boxes per image that took them (0 when none did).

    The student and teacher see the same padded batch. When their data
    preprocessors normalise differently (e.g. SSD's ``std=1`` vs.
    RetinaNet's ImageNet std), the student's normalised batch is mapped to
    the teacher's normalisation (and channel order) before the teacher runs.

    Args:
        student (dict): Model config of the student detector (any mmdet
            detector; its ``data_preprocessor`` becomes the distiller's).
        teacher_cfg (str | dict): Teacher config file, ``'mmdet::...'``
            config, or model dict.
        teacher_ckpt (str): Checkpoint of the trained teacher.
        feature_pairs (list[dict]): One dict per distilled level with keys
            ``name`` (loss key ``loss_fgd_<name>``), ``student`` and
            ``teacher`` (feature specs, see above) and ``loss`` (an
            :class:`FGDLoss` config).
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
        distill_weight (float): Multiplier of every FGD loss (set by
            :class:`FGDDistillHook` for warm-up). Defaults to 1.
        distill_enabled (bool): When False the teacher is not run and the
            FGD losses are zero (set by the hook to stop distillation).
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
                f'FGDDistiller: fg_boxes must be one of {FG_BOX_SOURCES}, got '
                f'{fg_boxes!r}')
        if data_preprocessor is not None:
            raise ValueError(
                'FGDDistiller: set the data preprocessor in model.student, not '
                'in model (the student\'s is used for the whole batch)')
        super().__init__(data_preprocessor=None, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        # The student's preprocessor serves the distiller (same object).
        self.data_preprocessor = self.student.data_preprocessor

        if not isinstance(teacher_ckpt, str) or not teacher_ckpt:
            raise ValueError(
                'FGDDistiller: teacher_ckpt must be the path of the trained '
                f'teacher checkpoint, got {teacher_ckpt!r}')
        self.teacher_cfg = teacher_cfg if isinstance(teacher_cfg, str) \
            else 'dict'
        self.teacher_ckpt = teacher_ckpt
        self.teacher = MODELS.build(build_teacher_model_cfg(teacher_cfg))
        if '://' not in teacher_ckpt and not osp.isfile(teacher_ckpt):
            raise FileNotFoundError(
                f'FGDDistiller: teacher checkpoint {teacher_ckpt!r} not found '
                f'(working directory {os.getcwd()}); train the teacher first '
                '(see configs/fgd/README.md) or fix model.teacher_ckpt')
        load_checkpoint(self.teacher, teacher_ckpt, map_location='cpu',
                        strict=True, logger='current')
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        # Loaded weights: mmengine's init_weights must not touch them.
        self.teacher._is_init = True

        self._same_normalisation = self._compare_normalisation()
        if not self._same_normalisation:
            print_log(
                'FGDDistiller: student and teacher normalise inputs '
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
            raise ValueError('FGDDistiller: feature_pairs is empty; name at '
                             'least one student/teacher feature pair')
        for i, pair in enumerate(feature_pairs):
            missing = {'name', 'student', 'teacher', 'loss'} - set(pair)
            if missing:
                raise KeyError(
                    f'FGDDistiller: feature_pairs[{i}] lacks {sorted(missing)}'
                    "; each pair is dict(name='p3', student='neck[0]', "
                    "teacher='neck[0]', loss=dict(type='FGDLoss', ...))")
            name = str(pair['name'])
            if name in losses:
                raise ValueError(
                    f'FGDDistiller: feature pair name {name!r} is used twice')
            self._register_tap('student', name, pair['student'], i)
            self._register_tap('teacher', name, pair['teacher'], i)
            losses[name] = MODELS.build(pair['loss'])
            self.pair_names.append(name)
        self.distill_losses = nn.ModuleDict(losses)
        self._register_load_state_dict_pre_hook(self._fill_teacher_weights)

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
                f'FGDDistiller: feature_pairs[{i}].{side}={spec!r}: '
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
                    f'FGDDistiller: {spec!r} indexes the output of a module '
                    f'that returns a {type(output).__name__}; drop the [i]')
            output = output[index]
        elif not isinstance(output, Tensor):
            raise TypeError(
                f'FGDDistiller: {spec!r} returns a {type(output).__name__}; '
                "pick one element with [i] (e.g. 'neck[0]')")
        self._records[key] = output

    def _compare_normalisation(self) -> bool:
        s_on, s_mean, s_std, s_rgb = _normalisation(self.data_preprocessor)
        t_on, t_mean, t_std, t_rgb = _normalisation(
            self.teacher.data_preprocessor)
        if s_on != t_on or s_rgb != t_rgb:
            return False
        if not s_on:
            return True
        return bool(
            torch.allclose(s_mean.flatten(), t_mean.flatten().to(s_mean))
            and torch.allclose(s_std.flatten(), t_std.flatten().to(s_std)))

    def _teacher_inputs(self, inputs: Tensor) -> Tensor:
        """The student's normalised batch in the teacher's normalisation."""
        if self._same_normalisation:
            return inputs
        s_on, s_mean, s_std, s_rgb = _normalisation(self.data_preprocessor)
        t_on, t_mean, t_std, t_rgb = _normalisation(
            self.teacher.data_preprocessor)
        x = inputs
        if s_on:
            x = x * s_std.to(x) + s_mean.to(x)
        if s_rgb != t_rgb:
            x = x.flip(1)
        if t_on:
            x = (x - t_mean.to(x)) / t_std.to(x)
        return x

    def _fill_teacher_weights(self, state_dict, prefix, *args) -> None:
        """Checkpoints without teacher weights load silently.

        :class:`FGDDistillHook` drops the (frozen, reloadable) teacher from
        saved checkpoints; on resume the teacher keeps the weights loaded
        from ``teacher_ckpt``.
        """
        t_prefix = prefix + 'teacher.'
        if any(k.startswith(t_prefix) for k in state_dict):
            return
        if not any(k.startswith(prefix) for k in state_dict):
            return
        for k, v in self.teacher.state_dict().items():
            state_dict[t_prefix + k] = v

    def train(self, mode: bool = True) -> 'FGDDistiller':
        """Set train/eval mode; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

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
        """Student losses plus ``loss_fgd_<name>`` per feature pair.

        Args:
            batch_inputs (Tensor): ``Tensor[B, 3, H_in, W_in]``, the padded,
                normalised batch.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (may be empty where the teacher gives the boxes).

        Returns:
            dict[str, Tensor]: The student's losses and the FGD losses (and
            ``fgd_teacher_boxes`` unless ``fg_boxes='gt'``).
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
                        f'FGDDistiller: the {side} module of feature pair '
                        f'{name!r} did not run in the {side}\'s {where}; pick '
                        'a backbone or neck module')
            loss = self.distill_losses[name](records[('student', name)],
                                             records[('teacher', name)],
                                             fg_bboxes, batch_input_shape)
            losses[f'loss_fgd_{name}'] = loss * self.distill_weight
        if self.fg_boxes in ('teacher', 'gt_or_teacher'):
            counts = [len(b) for b, t in zip(fg_bboxes, use_teacher) if t]
            losses['fgd_teacher_boxes'] = batch_inputs.new_tensor(
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
                f'FGDDistiller: fg_boxes={self.fg_boxes!r} needs a student '
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
        """Zero FGD losses that still touch every FGD parameter.

        Keeps the log keys after distillation stops, and lets DDP (without
        ``find_unused_parameters``) see a gradient for every parameter.
        """
        out = {}
        device = next(self.student.parameters()).device
        for name in self.pair_names:
            params = list(self.distill_losses[name].parameters())
            zero = torch.zeros((), device=device)
            out[f'loss_fgd_{name}'] = zero + sum(p.sum() * 0 for p in params)
        if self.fg_boxes in ('teacher', 'gt_or_teacher'):
            out['fgd_teacher_boxes'] = torch.zeros((), device=device)
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

    Turns an :class:`FGDDistiller` state dict into one that loads into the
    plain student detector (teacher, align convs and GcBlocks are dropped).
    """
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                      if k.startswith(prefix))
    if not out:
        raise KeyError(f'no key starts with {prefix!r}: not an FGDDistiller '
                       'checkpoint')
    return out
