"""Schedule, checks, teacher evaluation and student-only checkpoints of a
distillation run (any model that follows the distiller interface below)."""
import os
import os.path as osp
from typing import List, Optional

import torch
import torch.nn as nn
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import save_checkpoint

from cervdet.models.detectors.feature_distiller import extract_student_state_dict


def distill_schedule_weight(iteration: int, epoch: int, warmup_iters: int = 0,
                            stop_iter: Optional[int] = None,
                            stop_epoch: Optional[int] = None) -> float:
    """Multiplier of the distillation losses at a training step.

    Args:
        iteration (int): Iterations done before this step (``runner.iter``).
        epoch (int): Epochs done before this step (``runner.epoch``).
        warmup_iters (int): The weight rises linearly from
            ``1 / warmup_iters`` at the first step to 1 at step
            ``warmup_iters``; 0 disables warm-up.
        stop_iter (int, optional): Distil during the first ``stop_iter``
            iterations only.
        stop_epoch (int, optional): Distil during the first ``stop_epoch``
            epochs only.

    Returns:
        float: 0 once distillation has stopped, else the warm-up weight.
    """
    if stop_iter is not None and iteration >= stop_iter:
        return 0.0
    if stop_epoch is not None and epoch >= stop_epoch:
        return 0.0
    if warmup_iters > 0:
        return min(1.0, (iteration + 1) / warmup_iters)
    return 1.0


def student_checkpoint(checkpoint: dict, prefix: str = 'student.') -> dict:
    """A checkpoint of the student alone from a distillation checkpoint.

    Keeps the student's weights (``prefix`` removed, so they load into the
    plain student config, e.g. with ``tools/test.py``) and the meta data
    (epoch, iteration, ``dataset_meta``); drops the teacher, the
    distillation losses, the optimizer and the schedulers.

    Args:
        checkpoint (dict): A checkpoint saved by the runner while training
            a distiller (:class:`~cervdet.models.detectors.FeatureDistiller`:
            student weights under ``'student.'``).
        prefix (str): Prefix of the student's weights; ``''`` for a model
            whose own weights are the student's
            (:class:`~cervdet.models.detectors.PCNRetinaNet`).

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}``.
    """
    meta = dict(checkpoint.get('meta', {}))
    meta.pop('cfg', None)  # the distiller's config, not the student's
    meta['fgd_student'] = True  # meta key of existing checkpoints, kept
    return dict(
        meta=meta,
        state_dict=extract_student_state_dict(checkpoint['state_dict'],
                                              prefix))


@HOOKS.register_module()
class DistillationHook(Hook):
    """Manage a distillation run: schedule, checks, teacher evaluation and
    student-only checkpoints. Registered also as ``FGDDistillHook``, its
    former name.

    The model (unwrapped from DDP) must follow the distiller interface of
    :class:`~cervdet.models.detectors.FeatureDistiller`:

    - ``teacher`` (nn.Module): the frozen teacher (checked: no parameter
      requires grad, every module in eval mode);
    - ``distill_weight`` (float) and ``distill_enabled`` (bool): read by the
      model's ``loss``, which multiplies its distillation losses by the
      weight and, when disabled, neither runs the teacher nor calls the
      losses (zero losses, same keys);
    - optional, for the log and the checkpoint meta: ``teacher_cfg``,
      ``teacher_ckpt``, ``pair_names``, ``fg_boxes``;
    - optional ``student_prefix`` (str): prefix of the student's weights in
      the model's state dict (default ``'student.'``; ``''`` when the
      model's own weights are the student's, as for
      :class:`~cervdet.models.detectors.PCNRetinaNet`).

    What it does:

    - Before training, checks the interface and the frozen teacher, and
      (``validate_teacher``) evaluates the teacher once on the validation
      set with the run's evaluator when it is a detector; metrics are
      logged as ``teacher/<metric>`` (the student is validated by the
      usual ``val_cfg`` loop).
    - Before every iteration sets the distillation weight: linear warm-up
      over ``warmup_iters``, then 1; 0 and no teacher forward once
      ``stop_iter`` / ``stop_epoch`` is reached. The weight is logged as
      ``distill_weight``; the model logs its losses (``FeatureDistiller``:
      ``loss_distill_<name>``).
    - When the runner saves a checkpoint: the teacher is not in it (the
      frozen-teacher policy of :class:`~cervdet.models.utils.
      FrozenTeacherMixin`; it is reloaded from ``teacher_ckpt``) unless
      ``drop_teacher=False`` puts it back; with ``save_student`` writes
      ``student_epoch_<n>.pth`` / ``student_iter_<n>.pth`` next to it,
      which loads into the plain student config; the path of the latest
      one is written to ``last_student_checkpoint``.

    Args:
        warmup_iters (int): Iterations of linear warm-up. Defaults to 0.
        stop_epoch (int, optional): Distil during the first ``stop_epoch``
            epochs only. Defaults to None (whole run).
        stop_iter (int, optional): Distil during the first ``stop_iter``
            iterations only. Defaults to None.
        validate_teacher (bool): Evaluate the teacher before training (a
            detector teacher only). Defaults to True.
        save_student (bool): Write student-only checkpoints. Defaults to
            True.
        max_keep_student_ckpts (int): Keep at most this many student-only
            checkpoints of this run (oldest removed); -1 keeps all.
            Defaults to -1.
        drop_teacher (bool): Leave the teacher's weights out of the
            training checkpoints; False saves them under ``teacher.``.
            Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup_iters: int = 0,
                 stop_epoch: Optional[int] = None,
                 stop_iter: Optional[int] = None,
                 validate_teacher: bool = True,
                 save_student: bool = True,
                 max_keep_student_ckpts: int = -1,
                 drop_teacher: bool = True) -> None:
        if warmup_iters < 0:
            raise ValueError(
                f'DistillationHook: warmup_iters must be >= 0, got '
                f'{warmup_iters}')
        for name, value in (('stop_epoch', stop_epoch), ('stop_iter',
                                                         stop_iter)):
            if value is not None and value < 0:
                raise ValueError(
                    f'DistillationHook: {name} must be >= 0 or None, got '
                    f'{value}')
        self.warmup_iters = warmup_iters
        self.stop_epoch = stop_epoch
        self.stop_iter = stop_iter
        self.validate_teacher = validate_teacher
        self.save_student = save_student
        self.max_keep_student_ckpts = max_keep_student_ckpts
        self.drop_teacher = drop_teacher
        self._student_ckpts: List[str] = []

    @staticmethod
    def _distiller(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        missing = [a for a in ('teacher', 'distill_weight', 'distill_enabled')
                   if not hasattr(model, a)]
        if missing or not isinstance(getattr(model, 'teacher'), nn.Module):
            raise TypeError(
                'DistillationHook needs a distiller (model.type='
                '"FeatureDistiller", formerly "FGDDistiller", or a model with '
                '`teacher`, `distill_weight` and `distill_enabled`), got '
                f'{type(model).__name__}; remove the hook from custom_hooks '
                'or wrap the detector in a FeatureDistiller')
        return model

    def before_train(self, runner) -> None:
        distiller = self._distiller(runner)
        teacher = distiller.teacher
        if teacher.training or any(m.training for m in teacher.modules()):
            raise RuntimeError('DistillationHook: the teacher is in train '
                               'mode')
        trainable = [n for n, p in teacher.named_parameters()
                     if p.requires_grad]
        if trainable:
            raise RuntimeError('DistillationHook: teacher parameters require '
                               f'grad: {trainable[:5]}')
        runner.logger.info(
            f'Distillation: teacher {getattr(distiller, "teacher_cfg", "-")} '
            f'from {getattr(distiller, "teacher_ckpt", "-")}; pairs '
            f'{getattr(distiller, "pair_names", "-")}; mask boxes '
            f'{getattr(distiller, "fg_boxes", "-")!r}; '
            f'warm-up {self.warmup_iters} iters; stop at epoch '
            f'{self.stop_epoch} / iter {self.stop_iter}')
        if self.validate_teacher:
            self._validate_teacher(runner, distiller)

    def _validate_teacher(self, runner, distiller: nn.Module) -> None:
        loop = runner.val_loop
        if loop is None:
            runner.logger.warning(
                'DistillationHook: validate_teacher=True but the config has '
                'no val_dataloader / val_cfg; the teacher is not evaluated')
            return
        teacher = distiller.teacher
        if not isinstance(teacher, BaseDetector):
            runner.logger.warning(
                f'DistillationHook: the teacher ({type(teacher).__name__}) '
                'is not a detector; it is not evaluated on the val set')
            return
        with torch.no_grad():
            for data_batch in loop.dataloader:
                outputs = teacher.val_step(data_batch)
                loop.evaluator.process(data_samples=outputs,
                                       data_batch=data_batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        scalars = {f'teacher/{k}': v for k, v in metrics.items()
                   if isinstance(v, (int, float))}
        runner.message_hub.update_info('distill_teacher_metrics', metrics)
        if scalars:
            runner.visualizer.add_scalars(scalars, step=runner.iter)
        runner.logger.info('Distillation teacher on the val set: ' +
                           '  '.join(f'{k}: {v:.4f}' if isinstance(v, float)
                                     else f'{k}: {v}'
                                     for k, v in scalars.items()))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        distiller = self._distiller(runner)
        weight = distill_schedule_weight(runner.iter, runner.epoch,
                                         self.warmup_iters, self.stop_iter,
                                         self.stop_epoch)
        enabled = weight > 0
        if distiller.distill_enabled and not enabled:
            runner.logger.info(
                f'Distillation stops at epoch {runner.epoch + 1}, '
                f'iter {runner.iter + 1}')
        distiller.distill_enabled = enabled
        distiller.distill_weight = weight
        runner.message_hub.update_scalar('train/distill_weight', weight)

    # ------------------------------------------------------ checkpoints ---
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        distiller = self._distiller(runner)
        if self.save_student:
            self._save_student(runner, checkpoint, getattr(
                distiller, 'student_prefix', 'student.'))
        state = checkpoint['state_dict']
        if self.drop_teacher:
            # the model's state dict holds no teacher (FrozenTeacherMixin);
            # a model without that policy loses it here
            for key in [k for k in state if k.startswith('teacher.')]:
                del state[key]
            checkpoint['meta']['fgd_teacher'] = dict(
                cfg=getattr(distiller, 'teacher_cfg', None),
                ckpt=getattr(distiller, 'teacher_ckpt', None))
        elif not any(k.startswith('teacher.') for k in state):
            for k, v in distiller.teacher.state_dict().items():
                state['teacher.' + k] = v.detach().cpu()

    def _out_dir(self, runner) -> str:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and isinstance(
                    getattr(hook, 'out_dir', None), str):
                return hook.out_dir
        return runner.work_dir

    def _by_epoch(self, runner) -> bool:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook.by_epoch
        return True

    @master_only
    def _save_student(self, runner, checkpoint: dict,
                      prefix: str = 'student.') -> None:
        meta = checkpoint.get('meta', {})
        if self._by_epoch(runner):
            name = f'student_epoch_{meta.get("epoch", runner.epoch)}.pth'
        else:
            name = f'student_iter_{meta.get("iter", runner.iter)}.pth'
        out_dir = self._out_dir(runner)
        path = osp.join(out_dir, name)
        save_checkpoint(student_checkpoint(checkpoint, prefix), path)
        with open(osp.join(out_dir, 'last_student_checkpoint'), 'w') as f:
            f.write(path)
        if path not in self._student_ckpts:
            self._student_ckpts.append(path)
        if self.max_keep_student_ckpts > 0:
            while len(self._student_ckpts) > self.max_keep_student_ckpts:
                old = self._student_ckpts.pop(0)
                if osp.isfile(old):
                    os.remove(old)
        runner.logger.info(
            f'Distillation: student-only checkpoint saved to {path}')


# The former name: configs written for it keep working.
FGDDistillHook = DistillationHook
HOOKS.register_module(name='FGDDistillHook', module=DistillationHook)
