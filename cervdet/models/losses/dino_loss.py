"""The self-distillation loss of DINO (Caron et al., "Emerging properties in
self-supervised vision transformers", ICCV 2021), as used for cervical
cytology tiles by Stegmueller et al. (ISBI 2023).

The teacher's output of every *global* view ``g`` is centred and sharpened,
``P_t = softmax((t_g - c) / tau_t)``; the student's output of every view
``v`` (global and local) gives ``log P_s = log_softmax(s_v / tau_s)``; the
loss is the cross-entropy ``H(P_t, P_s) = -sum_k P_t log P_s`` averaged over
the batch and over every pair ``(g, v)`` with ``v != g`` (DINO, Eq. 3 and
Algorithm 1). The centre ``c`` is an EMA of the teacher's batch mean
(Eq. 4), momentum 0.9, all-reduced across ranks.

Logged (not losses): the mean entropy of the teacher's distribution
``teacher_entropy`` (``log K`` = uniform collapse, 0 = one-hot collapse),
``center_norm`` and ``teacher_temp``.
"""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmpretrain.registry import MODELS
from torch import Tensor


def teacher_temp_schedule(step: float, warmup_steps: float,
                          warmup_teacher_temp: float,
                          teacher_temp: float) -> float:
    """Linear warm-up of the teacher temperature, then constant.

    ``tau_t(step) = warmup + (final - warmup) * step / warmup_steps`` for
    ``step < warmup_steps`` and ``final`` afterwards (DINO's
    ``teacher_temp_schedule``; the official one is a per-epoch
    ``np.linspace``, here linear in whatever unit ``step`` has).

    Args:
        step (float): Current step (iteration, or fractional epoch).
        warmup_steps (float): Length of the warm-up; ``<= 0`` disables it.
        warmup_teacher_temp (float): Temperature at step 0 (0.04).
        teacher_temp (float): Temperature after the warm-up (0.04-0.07).

    Returns:
        float: The teacher temperature.
    """
    if warmup_steps <= 0 or step >= warmup_steps:
        return float(teacher_temp)
    step = max(float(step), 0.)
    return float(warmup_teacher_temp +
                 (teacher_temp - warmup_teacher_temp) * step / warmup_steps)


def dino_loss(student_logits: Tensor, teacher_logits: Tensor, center: Tensor,
              student_temp: float = 0.1,
              teacher_temp: float = 0.04) -> Tensor:
    """Cross-entropy between the teacher's global views and the student's
    other views, averaged as in DINO.

    Student view ``v < G`` is the same crop as teacher view ``v`` (the
    teacher sees the ``G`` global views only); those pairs are skipped.

    Args:
        student_logits (Tensor[V, B, K]): Student head outputs of the ``V``
            views (``G`` global views first, then the local ones).
        teacher_logits (Tensor[G, B, K]): Teacher head outputs of the global
            views (detached inside).
        center (Tensor[K] | Tensor[1, K]): The centre ``c``.
        student_temp (float): ``tau_s`` (0.1).
        teacher_temp (float): ``tau_t``.

    Returns:
        Tensor: Scalar loss, mean over ``B`` and over the
        ``G * V - min(G, V)`` pairs ``(g, v != g)``.
    """
    if student_logits.dim() != 3 or teacher_logits.dim() != 3:
        raise ValueError('dino_loss needs student_logits Tensor[V, B, K] and '
                         'teacher_logits Tensor[G, B, K]; got shapes '
                         f'{tuple(student_logits.shape)} and '
                         f'{tuple(teacher_logits.shape)}')
    num_views, batch, _ = student_logits.shape
    num_global = teacher_logits.shape[0]
    if teacher_logits.shape[1:] != student_logits.shape[1:]:
        raise ValueError('student and teacher logits must share [B, K]; got '
                         f'{tuple(student_logits.shape)} and '
                         f'{tuple(teacher_logits.shape)}')
    # Eq. 3: P_t = softmax((g_t - c) / tau_t), log P_s = log_softmax(g_s/tau_s)
    probs_t = F.softmax(
        (teacher_logits.detach() - center.reshape(1, 1, -1)) / teacher_temp,
        dim=-1)
    log_probs_s = F.log_softmax(student_logits / student_temp, dim=-1)
    # cross-entropy of every (teacher view g, student view v) pair: [G, V]
    ce = -torch.einsum('gbk,vbk->gv', probs_t, log_probs_s) / batch
    same = torch.eye(num_global, num_views, dtype=torch.bool,
                     device=ce.device)
    num_pairs = num_global * num_views - int(same.sum())
    if num_pairs == 0:
        raise ValueError('dino_loss needs at least one (teacher view, other '
                         'student view) pair; got one view')
    return ce.masked_fill(same, 0.).sum() / num_pairs


def teacher_entropy(teacher_logits: Tensor, center: Tensor,
                    teacher_temp: float) -> Tensor:
    """Mean entropy of the teacher's centred, sharpened distribution.

    Args:
        teacher_logits (Tensor[..., K]): Teacher head outputs.
        center (Tensor[K] | Tensor[1, K]): The centre.
        teacher_temp (float): ``tau_t``.

    Returns:
        Tensor: Scalar in ``[0, log K]`` (no gradient).
    """
    logits = (teacher_logits.detach() - center.reshape(-1)) / teacher_temp
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def update_center(center: Tensor, batch_center: Tensor,
                  momentum: float = 0.9) -> Tensor:
    """DINO Eq. 4: ``c <- m c + (1 - m) mean_i t_i``.

    Args:
        center (Tensor[1, K]): Current centre.
        batch_center (Tensor[1, K]): Mean teacher output of the batch (over
            all ranks).
        momentum (float): ``m`` (0.9).

    Returns:
        Tensor[1, K]: The new centre.
    """
    return center * momentum + batch_center * (1. - momentum)


@MODELS.register_module()
class DINOLoss(nn.Module):
    """DINO self-distillation loss with centring and a teacher temperature
    warm-up (mmpretrain ``MODELS``).

    The centre is a buffer ``center`` (Tensor[1, K], saved in checkpoints),
    updated in every training-mode :meth:`forward` from the teacher outputs
    of the batch, all-reduced (sum) across ranks when distributed.

    Args:
        out_channels (int): Head output dimension ``K``.
        student_temp (float): ``tau_s``. Defaults to 0.1.
        teacher_temp (float): Final ``tau_t``. Defaults to 0.04.
        warmup_teacher_temp (float): ``tau_t`` at the start. Defaults to 0.04.
        warmup_teacher_temp_iters (int): Warm-up length in iterations.
            Defaults to 0.
        warmup_teacher_temp_epochs (float, optional): Warm-up length in
            epochs (used instead of the iterations when given; needs the
            ``epoch`` argument of :meth:`forward`, which
            :class:`~cervdet.models.selfsup.DINOPretrain` computes as
            ``iter / (max_iters / max_epochs)``; with an iteration-based
            train loop use ``warmup_teacher_temp_iters``). Defaults to None.
        center_momentum (float): Centre EMA momentum. Defaults to 0.9.
        loss_weight (float): Weight of ``loss_dino``. Defaults to 1.0.
    """

    def __init__(self,
                 out_channels: int,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.04,
                 warmup_teacher_temp: float = 0.04,
                 warmup_teacher_temp_iters: int = 0,
                 warmup_teacher_temp_epochs: Optional[float] = None,
                 center_momentum: float = 0.9,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        for name, value in (('student_temp', student_temp),
                            ('teacher_temp', teacher_temp),
                            ('warmup_teacher_temp', warmup_teacher_temp)):
            if value <= 0:
                raise ValueError(f'DINOLoss: {name} must be > 0; got {value}')
        if not 0. <= center_momentum <= 1.:
            raise ValueError('DINOLoss: center_momentum must be in [0, 1]; '
                             f'got {center_momentum}')
        self.out_channels = int(out_channels)
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_iters = int(warmup_teacher_temp_iters)
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.center_momentum = float(center_momentum)
        self.loss_weight = float(loss_weight)
        self.register_buffer('center', torch.zeros(1, self.out_channels))

    def current_teacher_temp(self, iter: int = 0,
                             epoch: Optional[float] = None) -> float:
        """Teacher temperature at ``iter`` (or at fractional ``epoch`` when
        the warm-up is given in epochs)."""
        if self.warmup_teacher_temp_epochs is not None:
            if epoch is None:
                raise ValueError(
                    'DINOLoss: warmup_teacher_temp_epochs is set but no epoch '
                    'was given (set warmup_teacher_temp_iters instead when '
                    'training by iterations)')
            return teacher_temp_schedule(epoch,
                                         self.warmup_teacher_temp_epochs,
                                         self.warmup_teacher_temp,
                                         self.teacher_temp)
        return teacher_temp_schedule(iter, self.warmup_teacher_temp_iters,
                                     self.warmup_teacher_temp,
                                     self.teacher_temp)

    @torch.no_grad()
    def update_center(self, teacher_logits: Tensor) -> None:
        """EMA update of the centre from Tensor[G, B, K] (or [N, K]) teacher
        outputs, averaged over all samples of all ranks (DINO Eq. 4)."""
        flat = teacher_logits.detach().reshape(-1, self.out_channels)
        batch_sum = flat.sum(dim=0, keepdim=True).float()
        count = torch.tensor([float(flat.shape[0])], device=flat.device)
        if dist.get_world_size() > 1:
            dist.all_reduce(batch_sum, op='sum')
            dist.all_reduce(count, op='sum')
        batch_center = batch_sum / count.clamp(min=1.)
        self.center.copy_(
            update_center(self.center, batch_center.to(self.center.dtype),
                          self.center_momentum))

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                iter: int = 0,
                epoch: Optional[float] = None) -> Dict[str, Tensor]:
        """Loss of one batch; in training mode the centre is updated after
        the loss is computed (with the old centre, as in DINO).

        Args:
            student_logits (Tensor[V, B, K]): Student outputs of all views.
            teacher_logits (Tensor[G, B, K]): Teacher outputs of the global
                views.
            iter (int): Current iteration (teacher temperature warm-up).
            epoch (float, optional): Current fractional epoch (for
                ``warmup_teacher_temp_epochs``).

        Returns:
            dict[str, Tensor]: ``loss_dino`` and the detached log values
            ``teacher_entropy``, ``center_norm``, ``teacher_temp``.
        """
        temp = self.current_teacher_temp(iter, epoch)
        loss = dino_loss(student_logits, teacher_logits, self.center,
                         self.student_temp, temp)
        entropy = teacher_entropy(teacher_logits, self.center, temp)
        if self.training:
            self.update_center(teacher_logits)
        return dict(
            loss_dino=self.loss_weight * loss,
            teacher_entropy=entropy,
            center_norm=self.center.norm().detach().clone(),
            teacher_temp=torch.tensor(temp, device=loss.device))

    def extra_repr(self) -> str:
        return (f'out_channels={self.out_channels}, '
                f'student_temp={self.student_temp}, '
                f'teacher_temp={self.warmup_teacher_temp}->'
                f'{self.teacher_temp}, center_momentum={self.center_momentum}')


def uniform_entropy(out_channels: int) -> float:
    """``log K``: the teacher entropy of a uniform (collapsed) output."""
    return math.log(out_channels)


__all__ = [
    'DINOLoss', 'dino_loss', 'teacher_temp_schedule', 'teacher_entropy',
    'update_center', 'uniform_entropy'
]
