"""Schedule, checks, teacher evaluation and student-only checkpoints for FGD."""
import os
import os.path as osp
from typing import List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import save_checkpoint

from cervdet.models.detectors.fgd_distiller import (
    FGDDistiller,
    extract_student_state_dict,
)


def fgd_schedule_weight(iteration: int, epoch: int, warmup_iters: int = 0,
                        stop_iter: Optional[int] = None,
                        stop_epoch: Optional[int] = None) -> float:
    """Multiplier of the FGD losses at a training step.

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


def student_checkpoint(checkpoint: dict) -> dict:
    """A checkpoint of the student alone from an FGD training checkpoint.

    Keeps the ``student.`` weights (prefix removed, so they load into the
    plain student config, e.g. with ``tools/test.py``) and the meta data
    (epoch, iteration, ``dataset_meta``); drops the teacher, the FGD
    modules, the optimizer and the schedulers.

    Args:
        checkpoint (dict): A checkpoint saved by the runner while training
            an :class:`FGDDistiller`.

    Returns:
        dict: ``{'meta': ..., 'state_dict': ...}``.
    """
    meta = dict(checkpoint.get('meta', {}))
    meta.pop('cfg', None)  # the distiller's config, not the student's
    meta['fgd_student'] = True
    return dict(
        meta=meta,
        state_dict=extract_student_state_dict(checkpoint['state_dict']))


@HOOKS.register_module()
class FGDDistillHook(Hook):
    """Manage an :class:`FGDDistiller` run.

    - Checks before training that the model is an FGDDistiller whose teacher
      is frozen and in eval mode, and (``validate_teacher``) evaluates the
      teacher once on the validation set with the run's evaluator; metrics
      are logged as ``teacher/<metric>`` (the student is validated by the
      usual ``val_cfg`` loop).
    - Before every iteration sets the FGD weight: linear warm-up over
      ``warmup_iters``, then 1; 0 and no teacher forward once ``stop_iter``
      / ``stop_epoch`` is reached. The weight is logged as
      ``fgd_weight``; each level's loss is logged as ``loss_fgd_<name>``.
    - When the runner saves a checkpoint, drops the teacher from it
      (``drop_teacher``: it is reloaded from ``teacher_ckpt``) and
      (``save_student``) writes ``student_epoch_<n>.pth`` /
      ``student_iter_<n>.pth`` next to it, which loads into the plain
      student config; the path of the latest one is written to
      ``last_student_checkpoint``.

    Args:
        warmup_iters (int): Iterations of linear warm-up. Defaults to 0.
        stop_epoch (int, optional): Distil during the first ``stop_epoch``
            epochs only. Defaults to None (whole run).
        stop_iter (int, optional): Distil during the first ``stop_iter``
            iterations only. Defaults to None.
        validate_teacher (bool): Evaluate the teacher before training.
            Defaults to True.
        save_student (bool): Write student-only checkpoints. Defaults to
            True.
        max_keep_student_ckpts (int): Keep at most this many student-only
            checkpoints of this run (oldest removed); -1 keeps all.
            Defaults to -1.
        drop_teacher (bool): Leave the teacher's weights out of the
            training checkpoints. Defaults to True.
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
                f'FGDDistillHook: warmup_iters must be >= 0, got {warmup_iters}')
        for name, value in (('stop_epoch', stop_epoch), ('stop_iter',
                                                         stop_iter)):
            if value is not None and value < 0:
                raise ValueError(
                    f'FGDDistillHook: {name} must be >= 0 or None, got {value}')
        self.warmup_iters = warmup_iters
        self.stop_epoch = stop_epoch
        self.stop_iter = stop_iter
        self.validate_teacher = validate_teacher
        self.save_student = save_student
        self.max_keep_student_ckpts = max_keep_student_ckpts
        self.drop_teacher = drop_teacher
        self._student_ckpts: List[str] = []

    @staticmethod
    def _distiller(runner) -> FGDDistiller:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, FGDDistiller):
            raise TypeError(
                'FGDDistillHook needs model.type="FGDDistiller", got '
                f'{type(model).__name__}; remove the hook from custom_hooks '
                'or wrap the detector in an FGDDistiller')
        return model

    def before_train(self, runner) -> None:
        distiller = self._distiller(runner)
        teacher = distiller.teacher
        if teacher.training or any(m.training for m in teacher.modules()):
            raise RuntimeError('FGDDistillHook: the teacher is in train mode')
        trainable = [n for n, p in teacher.named_parameters()
                     if p.requires_grad]
        if trainable:
            raise RuntimeError('FGDDistillHook: teacher parameters require '
                               f'grad: {trainable[:5]}')
        runner.logger.info(
            f'FGD: teacher {distiller.teacher_cfg} from '
            f'{distiller.teacher_ckpt}; pairs {distiller.pair_names}; '
            f'mask boxes {distiller.fg_boxes!r}; '
            f'warm-up {self.warmup_iters} iters; stop at epoch '
            f'{self.stop_epoch} / iter {self.stop_iter}')
        if self.validate_teacher:
            self._validate_teacher(runner, distiller)

    def _validate_teacher(self, runner, distiller: FGDDistiller) -> None:
        loop = runner.val_loop
        if loop is None:
            runner.logger.warning(
                'FGDDistillHook: validate_teacher=True but the config has no '
                'val_dataloader / val_cfg; the teacher is not evaluated')
            return
        teacher = distiller.teacher
        with torch.no_grad():
            for data_batch in loop.dataloader:
                outputs = teacher.val_step(data_batch)
                loop.evaluator.process(data_samples=outputs,
                                       data_batch=data_batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        scalars = {f'teacher/{k}': v for k, v in metrics.items()
                   if isinstance(v, (int, float))}
        runner.message_hub.update_info('fgd_teacher_metrics', metrics)
        if scalars:
            runner.visualizer.add_scalars(scalars, step=runner.iter)
        runner.logger.info('FGD teacher on the val set: ' + '  '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
            for k, v in scalars.items()))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        distiller = self._distiller(runner)
        weight = fgd_schedule_weight(runner.iter, runner.epoch,
                                     self.warmup_iters, self.stop_iter,
                                     self.stop_epoch)
        enabled = weight > 0
        if distiller.distill_enabled and not enabled:
            runner.logger.info(
                f'FGD: distillation stops at epoch {runner.epoch + 1}, '
                f'iter {runner.iter + 1}')
        distiller.distill_enabled = enabled
        distiller.distill_weight = weight
        runner.message_hub.update_scalar('train/fgd_weight', weight)

    # ------------------------------------------------------ checkpoints ---
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        distiller = self._distiller(runner)
        if self.save_student:
            self._save_student(runner, checkpoint)
        if self.drop_teacher:
            state = checkpoint['state_dict']
            for key in [k for k in state if k.startswith('teacher.')]:
                del state[key]
            checkpoint['meta']['fgd_teacher'] = dict(
                cfg=distiller.teacher_cfg, ckpt=distiller.teacher_ckpt)

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
    def _save_student(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        if self._by_epoch(runner):
            name = f'student_epoch_{meta.get("epoch", runner.epoch)}.pth'
        else:
            name = f'student_iter_{meta.get("iter", runner.iter)}.pth'
        out_dir = self._out_dir(runner)
        path = osp.join(out_dir, name)
        save_checkpoint(student_checkpoint(checkpoint), path)
        with open(osp.join(out_dir, 'last_student_checkpoint'), 'w') as f:
            f.write(path)
        if path not in self._student_ckpts:
            self._student_ckpts.append(path)
        if self.max_keep_student_ckpts > 0:
            while len(self._student_ckpts) > self.max_keep_student_ckpts:
                old = self._student_ckpts.pop(0)
                if osp.isfile(old):
                    os.remove(old)
        runner.logger.info(f'FGD: student-only checkpoint saved to {path}')
