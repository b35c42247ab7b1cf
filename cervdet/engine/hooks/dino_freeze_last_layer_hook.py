"""DINO's frozen last layer: the weight-normalised last layer of the
projection head is not updated during the first epoch (DINO,
``--freeze_last_layer 1``; it stabilises the start of training)."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS


def last_layer_frozen(epoch: int, iteration: int, freeze_epochs: int = 1,
                      freeze_iters: Optional[int] = None) -> bool:
    """Whether the last layer is frozen at a training step.

    Args:
        epoch (int): Epochs done before this step (``runner.epoch``).
        iteration (int): Iterations done before this step (``runner.iter``).
        freeze_epochs (int): Frozen during the first ``freeze_epochs``
            epochs (used when ``freeze_iters`` is None).
        freeze_iters (int, optional): Frozen during the first
            ``freeze_iters`` iterations instead.

    Returns:
        bool
    """
    if freeze_iters is not None:
        return iteration < freeze_iters
    return epoch < freeze_epochs


@HOOKS.register_module()
class DINOFreezeLastLayerHook(Hook):
    """Keep the head's last layer unchanged at the start of DINO training
    (mmpretrain ``HOOKS``).

    As in the official code the gradients of the last layer are dropped
    (``grad = None``) right before each optimizer step (after clipping),
    through an optimizer step pre-hook, so neither the gradient, the
    weight decay nor the momentum touches it, also under DDP and AMP.

    Config::

        custom_hooks = [dict(type='DINOFreezeLastLayerHook', freeze_epochs=1)]

    Args:
        freeze_epochs (int): Number of frozen epochs. Defaults to 1.
        freeze_iters (int, optional): Number of frozen iterations instead
            (required with an iteration-based train loop).
        param_key (str): Parameters of the model (teacher excluded) whose
            dotted name contains this component are frozen. Defaults to
            ``'last_layer'`` (:class:`~cervdet.models.heads.
            DINOProjectionHead`).
    """

    priority = 'NORMAL'

    def __init__(self, freeze_epochs: int = 1,
                 freeze_iters: Optional[int] = None,
                 param_key: str = 'last_layer') -> None:
        self.freeze_epochs = int(freeze_epochs)
        self.freeze_iters = freeze_iters
        self.param_key = param_key
        self._params: List = []
        self._handles: List = []
        self._frozen = False

    def before_train(self, runner) -> None:
        if (isinstance(runner.train_loop, IterBasedTrainLoop)
                and self.freeze_iters is None and self.freeze_epochs > 0):
            raise ValueError(
                'DINOFreezeLastLayerHook: the train loop is iteration based, '
                'so freeze_epochs cannot be counted; set freeze_iters in the '
                'custom_hooks entry instead')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._params = [
            p for n, p in model.named_parameters()
            if self.param_key in n.split('.') and not n.startswith('teacher.')
            and p.requires_grad
        ]
        if not self._params:
            raise ValueError(
                'DINOFreezeLastLayerHook: the model has no trainable '
                f'parameter named "*.{self.param_key}.*"; use it with '
                'DINOPretrain + DINOProjectionHead or set param_key')
        optim_wrapper = runner.optim_wrapper
        wrappers = (list(optim_wrapper.values())
                    if hasattr(optim_wrapper, 'values') else [optim_wrapper])
        self._handles = [
            w.optimizer.register_step_pre_hook(self._drop_grads)
            for w in wrappers
        ]

    def _drop_grads(self, optimizer, args, kwargs) -> None:
        if self._frozen:
            for p in self._params:
                p.grad = None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._frozen = last_layer_frozen(runner.epoch, runner.iter,
                                         self.freeze_epochs, self.freeze_iters)

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._frozen = False


__all__ = ['DINOFreezeLastLayerHook', 'last_layer_frozen']
