"""Stop training at the first non-finite loss, naming the batch's images."""
import math
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_dist_info
from mmengine.hooks import Hook


def non_finite_losses(outputs: Optional[dict]) -> dict:
    """The entries of a train step's log variables that are inf or NaN.

    Args:
        outputs (dict | None): ``{name: Tensor | float}`` as returned by
            ``model.train_step`` (``loss``, ``loss_cls``, ...).

    Returns:
        dict: ``{name: float}`` of the non-finite ones.
    """
    bad = {}
    for name, value in (outputs or {}).items():
        if isinstance(value, torch.Tensor):
            if value.numel() and not bool(torch.isfinite(value).all()):
                bad[name] = float(value.detach().float().flatten()[0])
        elif isinstance(value, (int, float)) and not math.isfinite(value):
            bad[name] = float(value)
    return bad


def batch_image_paths(data_batch) -> list:
    """``img_path`` of each sample of a batch (what a loader packed)."""
    samples = data_batch.get('data_samples', []) \
        if isinstance(data_batch, dict) else []
    paths = []
    for s in samples or []:
        path = getattr(s, 'img_path', None)
        if path is None and hasattr(s, 'metainfo'):
            path = s.metainfo.get('img_path')
        paths.append(str(path))
    return paths


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`FloatingPointError` as soon as a loss is inf or NaN.

    MMEngine goes on training with a non-finite loss (the weights become
    NaN, the run exits 0 and tests score AP 0). This hook checks the log
    variables of every iteration (all ranks agree through one all-reduce of
    a flag) before any later hook saves a checkpoint, and names the
    iteration, the losses and the batch's image files. ``CervdetRunner``
    adds it to every training.

    With mixed precision (``AmpOptimWrapper``) an occasional overflow is
    normal: the loss scaler skips that step and lowers the scale. The run
    then stops only after ``amp_patience`` non-finite iterations in a row.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
        amp_patience (int): Consecutive non-finite iterations tolerated
            under ``AmpOptimWrapper``. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1, amp_patience: int = 10) -> None:
        self.interval = int(interval)
        self.amp_patience = int(amp_patience)
        self._bad_in_a_row = 0

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs: Optional[dict] = None
                         ) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        bad = non_finite_losses(outputs)
        _, world = get_dist_info()
        if world > 1:
            flag = torch.tensor([1. if bad else 0.])
            all_reduce(flag)
            any_bad = bool(flag.item() > 0)
        else:
            any_bad = bool(bad)
        if not any_bad:
            self._bad_in_a_row = 0
            return
        self._bad_in_a_row += 1
        wrapper = getattr(runner, 'optim_wrapper', None)
        if 'Amp' in type(wrapper).__name__ and \
                self._bad_in_a_row < self.amp_patience:
            return
        paths = batch_image_paths(data_batch)
        losses = ', '.join(f'{k}={v}' for k, v in bad.items()) or \
            'finite on this process (another process had a non-finite loss)'
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}, batch {batch_idx + 1}): {losses}. Images of '
            f'this batch: {", ".join(paths) or "unknown"}. Training stopped '
            'before the weights (now NaN) were saved. Usual causes: an image '
            'whose size differs from its annotation, or degenerate boxes '
            '(run tools/dataset_converters/check_coco.py --check-images), '
            'or a learning rate too high (lower optim_wrapper.optimizer.lr, '
            'add warm-up or clip_grad).')


__all__ = ['NonFiniteLossHook', 'non_finite_losses', 'batch_image_paths']
