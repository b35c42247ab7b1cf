"""DINO self-supervised pre-training (Caron et al., "Emerging properties in
self-supervised vision transformers", ICCV 2021) for cervical cytology
tiles, after Stegmueller et al., "Self-supervised learning-based cervical
cytology diagnostics in low-data regime and low-resource setting" (ISBI
2023).

A student (backbone [+ neck] + :class:`DINOProjectionHead`) and a teacher of
the same architecture. The teacher is an exponential moving average of the
student, updated **every training iteration** with a momentum
cosine-scheduled from ``base_momentum`` (0.996) to ``final_momentum`` (1)::

    theta_t <- m theta_t + (1 - m) theta_s                 (DINO, Sec. 3.1)
    m(i)    = 1 - (1 - m_0) (cos(pi i / I) + 1) / 2

(``m`` is the weight of the *old teacher*, DINO's convention; mmpretrain's
``CosineEMA`` calls ``1 - m`` its momentum). The teacher has no gradient
(``requires_grad=False``), sees the global views only, keeps its own
BatchNorm statistics (it runs in train mode like the official code's) and
never drops (its dropout / drop-path layers stay in eval mode, as the
official teacher has no stochastic depth).

The update is done inside :meth:`loss`, before the forward of iteration
``i >= 1`` (the student then holds the weights of optimizer step ``i - 1``),
with ``m(i - 1)``: the same teacher as the official update after each step,
and it also works under ``MMDistributedDataParallel`` (whose ``train_step``
bypasses the model's) and on resume (the pending update of the last saved
step happens at the first resumed iteration, once).

Usage in a config (mmpretrain scope)::

    model = dict(
        type='DINOPretrain',
        backbone=dict(type='ResNet', depth=50),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='DINOProjectionHead', in_channels=2048,
                  out_channels=65536),
        loss=dict(type='DINOLoss', out_channels=65536),
        base_momentum=0.996)
    custom_hooks = [dict(type='DINOFreezeLastLayerHook', freeze_epochs=1)]

``predict`` mode (``val_step`` / ``test_step``) returns one
:class:`~mmpretrain.structures.DataSample` per image with a field ``feat``
(Tensor[C], pooled teacher backbone features, not normalised) for the
k-NN metric.

State-dict layout: student ``backbone.*``, ``neck.*``, ``head.*``; teacher
``teacher.backbone.*``, ``teacher.neck.*``, ``teacher.head.*``; centre
``loss_module.center``.
"""
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MessageHub, print_log
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..utils import FrozenTeacherMixin, pool_backbone_output

PREDICT_ON = ('teacher', 'student')


def cosine_momentum(step: int, max_steps: int, base_momentum: float = 0.996,
                    final_momentum: float = 1.) -> float:
    """Teacher momentum of DINO's cosine schedule.

    ``m(i) = final - (final - base) (cos(pi i / I) + 1) / 2``; ``m(0) =
    base``, ``m(I) = final`` (official ``cosine_scheduler``).

    Args:
        step (int): Iteration ``i`` (clipped to ``[0, I]``).
        max_steps (int): Total iterations ``I`` (> 0).
        base_momentum (float): ``m(0)`` (0.996).
        final_momentum (float): ``m(I)`` (1.0).

    Returns:
        float: The momentum (weight of the old teacher).
    """
    if max_steps <= 0:
        raise ValueError(f'cosine_momentum: max_steps must be > 0; got '
                         f'{max_steps}')
    step = min(max(step, 0), max_steps)
    cos = (math.cos(math.pi * step / max_steps) + 1.) / 2.
    return final_momentum - (final_momentum - base_momentum) * cos


@torch.no_grad()
def ema_update_(teacher_params: Sequence[Tensor],
                student_params: Sequence[Tensor], momentum: float) -> None:
    """In place ``t <- m t + (1 - m) s`` for every pair (DINO, Sec. 3.1).

    Args:
        teacher_params (Sequence[Tensor]): Teacher tensors (updated).
        student_params (Sequence[Tensor]): Student tensors, same shapes.
        momentum (float): ``m``, the weight of the old teacher.
    """
    teacher_params = list(teacher_params)
    student_params = [s.detach() for s in student_params]
    if not teacher_params:
        return
    torch._foreach_mul_(teacher_params, momentum)
    torch._foreach_add_(teacher_params, student_params, alpha=1. - momentum)


def group_views_by_shape(views: Sequence[Tensor]) -> List[List[int]]:
    """Indices of consecutive views of one shape (global crops, then local
    crops): each group runs through the backbone as one batch.

    Args:
        views (Sequence[Tensor[B, 3, H_v, W_v]]): The views.

    Returns:
        list[list[int]]: e.g. ``[[0, 1], [2, 3, 4]]``.
    """
    groups: List[List[int]] = []
    for i, v in enumerate(views):
        if groups and views[groups[-1][-1]].shape == v.shape:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def is_dropout(module: nn.Module) -> bool:
    """Whether ``module`` is a dropout or drop-path (stochastic depth)
    layer (torch ``Dropout*`` or mmcv / mmpretrain ``DropPath``)."""
    return isinstance(module, nn.modules.dropout._DropoutNd) or \
        type(module).__name__ == 'DropPath'


@MODELS.register_module()
class DINOPretrain(FrozenTeacherMixin, BaseSelfSupervisor):
    """DINO student-teacher self-distillation (mmpretrain ``MODELS``).

    Inputs in ``loss`` mode: a list of ``V >= 2`` views Tensor[B, 3, H, W]
    from mmpretrain's ``MultiView`` (``num_global_crops`` global views
    first, all of one size, then the local views). Teacher: global views;
    student: all views.

    Args:
        backbone (dict): Backbone config (e.g. mmpretrain ``ResNet`` or
            ``VisionTransformer`` with ``out_type='cls_token'``).
        head (dict): :class:`DINOProjectionHead` config.
        loss (dict): :class:`DINOLoss` config.
        neck (dict, optional): Neck turning the backbone output into
            Tensor[N, C] (e.g. ``GlobalAveragePooling``); ``None`` uses
            :func:`pool_backbone_output`.
        num_global_crops (int): Number of global views ``G``. Defaults to 2.
        base_momentum (float): Teacher momentum at the start. Defaults to
            0.996.
        final_momentum (float): Teacher momentum at the end. Defaults to 1.
        momentum_max_iters (int, optional): Length of the momentum schedule;
            defaults to the runner's ``max_iters`` (message hub). Without
            either, the momentum stays at ``base_momentum``.
        predict_on (str): Features returned in ``predict`` mode:
            ``'teacher'`` (default, DINO evaluates the teacher) or
            ``'student'``.
        pretrained (str, optional): Checkpoint of the whole model (sets
            ``init_cfg``). Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Init config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 loss: dict,
                 neck: Optional[dict] = None,
                 num_global_crops: int = 2,
                 base_momentum: float = 0.996,
                 final_momentum: float = 1.,
                 momentum_max_iters: Optional[int] = None,
                 predict_on: str = 'teacher',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if predict_on not in PREDICT_ON:
            raise ValueError(f'DINOPretrain: predict_on must be one of '
                             f'{PREDICT_ON}; got {predict_on!r}')
        if num_global_crops < 1:
            raise ValueError('DINOPretrain: num_global_crops must be >= 1; '
                             f'got {num_global_crops}')
        if not 0. <= base_momentum <= final_momentum <= 1.:
            raise ValueError(
                'DINOPretrain: need 0 <= base_momentum <= final_momentum <= '
                f'1 (weights of the old teacher, e.g. 0.996 -> 1); got '
                f'{base_momentum} -> {final_momentum}')
        self.loss_module = MODELS.build(loss) if isinstance(loss,
                                                            dict) else loss
        self.num_global_crops = int(num_global_crops)
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        self.momentum_max_iters = momentum_max_iters
        self.predict_on = predict_on
        teacher = dict(backbone=copy.deepcopy(self.backbone),
                       head=copy.deepcopy(self.head))
        if self.with_neck:
            teacher['neck'] = copy.deepcopy(self.neck)
        # A momentum teacher: frozen for the optimizer, but trained state,
        # so it is saved; it never drops (its dropout / drop-path layers stay
        # in eval mode, as DINO builds it without stochastic depth); its
        # BatchNorm layers follow ``train(mode)``.
        self.add_teacher('teacher', nn.ModuleDict(teacher),
                         keep_eval=is_dropout, saved=True)
        self._last_teacher_iter: Optional[int] = None
        self._local_iter = 0
        self._warned_no_max_iters = False
        self.momentum = self.base_momentum

    # ``loss`` is BaseSelfSupervisor's method, so the loss module (and its
    # ``center`` buffer) lives in ``loss_module``.
    @property
    def student(self) -> Dict[str, nn.Module]:
        """The student's parts: ``backbone``, ``neck`` (if any), ``head``."""
        parts = dict(backbone=self.backbone, head=self.head)
        if self.with_neck:
            parts['neck'] = self.neck
        return parts

    def init_weights(self) -> None:
        """Initialise the student (``init_cfg``, e.g. a pre-trained
        backbone), then copy it into the teacher so both start equal."""
        super().init_weights()
        self.copy_student_to_teacher()

    @torch.no_grad()
    def copy_student_to_teacher(self) -> None:
        """``teacher <- student`` (parameters and buffers)."""
        for name, module in self.student.items():
            self.teacher[name].load_state_dict(module.state_dict())

    def _paired_params(self) -> Tuple[List[Tensor], List[Tensor]]:
        teacher, student = [], []
        for name, module in self.student.items():
            t_params = dict(self.teacher[name].named_parameters())
            for key, param in module.named_parameters():
                teacher.append(t_params[key].data)
                student.append(param.data)
        return teacher, student

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """One EMA step of the teacher parameters with ``momentum`` (weight
        of the old teacher). Teacher buffers (BN statistics) are the
        teacher's own."""
        teacher, student = self._paired_params()
        ema_update_(teacher, student, momentum)

    def _runtime(self) -> Tuple[int, Optional[int], Optional[float]]:
        """Current iteration, max iterations and fractional epoch from the
        message hub (an internal counter outside a runner)."""
        hub = MessageHub.get_current_instance()
        it = hub.get_info('iter')
        if it is None:
            it = self._local_iter
        max_iters = self.momentum_max_iters or hub.get_info('max_iters')
        max_epochs = hub.get_info('max_epochs')
        epoch = None
        if max_iters and max_epochs:
            epoch = it / (max_iters / max_epochs)
        return int(it), max_iters, epoch

    def momentum_at(self, it: int, max_iters: Optional[int]) -> float:
        """Teacher momentum at iteration ``it`` (:func:`cosine_momentum`)."""
        if not max_iters:
            if not self._warned_no_max_iters:
                print_log(
                    'DINOPretrain: no max_iters (runner or '
                    'momentum_max_iters): the teacher momentum stays at '
                    f'{self.base_momentum}', logger='current')
                self._warned_no_max_iters = True
            return self.base_momentum
        return cosine_momentum(it, max_iters, self.base_momentum,
                               self.final_momentum)

    def _maybe_update_teacher(self, it: int,
                              max_iters: Optional[int]) -> None:
        """The pending EMA step of the last optimizer step (iteration
        ``it - 1``), once per iteration."""
        if it >= 1 and self._last_teacher_iter != it:
            self.momentum = self.momentum_at(it - 1, max_iters)
            self.update_teacher(self.momentum)
        self._last_teacher_iter = it

    def _forward_views(self, parts: Dict[str, nn.Module],
                       views: Sequence[Tensor]) -> Tensor:
        """Run views through backbone (+ neck) + head, batching views of
        one shape together.

        Args:
            parts (dict): ``backbone``, ``head`` and optionally ``neck``.
            views (Sequence[Tensor[B, 3, H_v, W_v]]): ``V`` views.

        Returns:
            Tensor[V, B, K]: Head outputs.
        """
        batch = views[0].shape[0]
        pooled = []
        for group in group_views_by_shape(views):
            x = torch.cat([views[i] for i in group], dim=0)
            pooled.append(self._pool(parts, parts['backbone'](x)))
        logits = parts['head'](torch.cat(pooled, dim=0))
        return logits.reshape(len(views), batch, -1)

    @staticmethod
    def _pool(parts: Dict[str, nn.Module], feats) -> Tensor:
        if 'neck' in parts and parts['neck'] is not None:
            feats = parts['neck'](feats)
        return pool_backbone_output(feats)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """DINO loss of a batch of multi-view inputs.

        Args:
            inputs (list[Tensor[B, 3, H_v, W_v]]): ``V`` views, global first.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict[str, Tensor]: ``loss_dino`` plus the (non-loss) log values
            ``teacher_entropy``, ``center_norm``, ``teacher_temp`` and
            ``momentum``.
        """
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(
                'DINOPretrain.loss needs a list of views (MultiView in the '
                'train pipeline and collate_fn=dict(type="default_collate")'
                f'); got {type(inputs).__name__}')
        if len(inputs) < max(self.num_global_crops, 2):
            raise ValueError(
                f'DINOPretrain needs >= {max(self.num_global_crops, 2)} views '
                f'({self.num_global_crops} global); got {len(inputs)} (check '
                'MultiView num_views)')
        it, max_iters, epoch = self._runtime()
        if self.training:
            self._maybe_update_teacher(it, max_iters)
            self._local_iter += 1
        global_views = inputs[:self.num_global_crops]
        with torch.no_grad():
            teacher_logits = self._forward_views(self.teacher, global_views)
        student_logits = self._forward_views(self.student, inputs)
        losses = self.loss_module(student_logits, teacher_logits, iter=it,
                                  epoch=epoch)
        losses['momentum'] = torch.tensor(
            self.momentum, device=student_logits.device)
        return losses

    def extract_feat(self, inputs: Tensor, on: Optional[str] = None) -> Tensor:
        """Pooled backbone features.

        Args:
            inputs (Tensor[B, 3, H, W]): Images.
            on (str, optional): ``'teacher'`` or ``'student'``; defaults to
                ``predict_on``.

        Returns:
            Tensor[B, C]
        """
        on = on or self.predict_on
        parts = self.teacher if on == 'teacher' else self.student
        return pool_backbone_output(parts['backbone'](inputs))

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                **kwargs) -> List[DataSample]:
        """Features for k-NN probing.

        Args:
            inputs (Tensor[B, 3, H, W] | list): Images (a list of views uses
                the first).
            data_samples (list[DataSample], optional): Their samples (kept,
                with their ``gt_label``).

        Returns:
            list[DataSample]: One per image with ``feat`` Tensor[C]
            (pooled backbone features of ``predict_on``, not normalised).
        """
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        feats = self.extract_feat(inputs)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(feats.shape[0])]
        for sample, feat in zip(data_samples, feats):
            sample.set_field(feat.detach(), 'feat')
        return data_samples

    def forward(self,
                inputs: Union[Tensor, List[Tensor]],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'tensor'`` (pooled features of ``predict_on``), ``'loss'`` or
        ``'predict'``."""
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            return self.extract_feat(inputs)
        return super().forward(inputs, data_samples, mode)


__all__ = [
    'DINOPretrain', 'cosine_momentum', 'ema_update_', 'group_views_by_shape'
]
