"""Teacher networks inside a model: build, load, freeze, keep out of checkpoints.

Every cervdet model that learns from a teacher holds it the same way:

- **Build** (:func:`build_teacher`) from a config file, an ``'mmdet::'``
  config of an installed package, a model dict or a ready module, in the
  registry scope the config asks for.
- **Load** (:func:`load_teacher_checkpoint`) its trained weights strictly: a
  checkpoint that does not fit the teacher's config is an error, not a
  half-loaded teacher; a missing file names the config key to fix.
- **Freeze** (:meth:`FrozenTeacherMixin.add_teacher`): no parameter
  requires grad (the optimizer never sees it, DDP ignores it), and the
  teacher stays in eval mode under ``model.train()`` (BatchNorm statistics
  and dropout never change); mmengine's ``init_weights`` does not touch
  loaded weights.
- **Checkpoints**: a teacher loaded from its own checkpoint is *not* part of
  the model's ``state_dict()`` (a state-dict hook drops ``<name>.*``), so
  training checkpoints and the student's weights hold no teacher; loading a
  checkpoint without teacher weights is not reported as missing keys (the
  teacher keeps the weights of its own checkpoint), and a checkpoint that
  still holds them (saved before this policy) loads them into the teacher.

The same as OpenMMLab's distillers (mmrazor's ``SingleTeacherDistill``,
mmdet's ``KnowledgeDistillationSingleStageDetector``: build, load, freeze,
override ``train``), written once. Users: :class:`FeatureDistiller`
(``teacher``), :class:`PCNRetinaNet` (``pcn``) and :class:`DINOPretrain`,
whose momentum teacher is the one exception to the policy: it is updated
from the student during training, so it is frozen for the optimizer but
saved in checkpoints (``saved=True``) and only its dropout layers stay in
eval mode (``keep_eval=is_dropout``).
"""
import os
import os.path as osp
import re
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.runner.checkpoint import load_checkpoint

#: ``keep_eval`` of :meth:`FrozenTeacherMixin.add_teacher`: True (the whole
#: teacher), False (none of it) or a predicate on its modules.
KeepEval = Union[bool, Callable[[nn.Module], bool]]


def resolve_config_path(path: str) -> str:
    """File of a config given as a path or as ``'package::rel/path.py'``.

    ``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'`` resolves to the
    config shipped in the installed package (``<package>/.mim/configs/``).

    Args:
        path (str): A file path or ``'package::rel/path.py'``.

    Returns:
        str: The path of an existing file.
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
    """The ``model`` section of a teacher config path, or a model dict.

    Args:
        teacher_cfg (str | dict): A config file or ``'package::...'`` path
            (its ``model`` is taken), a whole config dict with a ``model``
            key, or a model dict.

    Returns:
        ConfigDict: The teacher's model config.
    """
    if isinstance(teacher_cfg, str):
        cfg = Config.fromfile(resolve_config_path(teacher_cfg))
        if 'model' not in cfg:
            raise KeyError(f'teacher config {teacher_cfg!r} has no `model`')
        return ConfigDict(cfg.model)
    if isinstance(teacher_cfg, dict):
        if 'type' not in teacher_cfg and 'model' in teacher_cfg:
            return ConfigDict(teacher_cfg['model'])
        return ConfigDict(teacher_cfg)
    raise TypeError('teacher_cfg must be a config path, an '
                    f"'mmdet::' path or a model dict, got {type(teacher_cfg)}")


def load_teacher_checkpoint(
        teacher: nn.Module,
        checkpoint: str,
        key: str = 'model.teacher_ckpt',
        teacher_key: str = 'the teacher',
        not_found_hint: str = '',
        mismatch_hint: str = '',
        revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
) -> None:
    """Load a teacher's trained weights, strictly.

    Args:
        teacher (nn.Module): The built teacher.
        checkpoint (str): Checkpoint path or URL (``'://'``).
        key (str): The config key that names the checkpoint (in messages).
        teacher_key (str): What names the teacher in messages (e.g. the
            config key of its model, ``'model.pcn'``).
        not_found_hint (str): What to do when the file does not exist.
        mismatch_hint (str): What to check when the weights do not fit.
        revise_keys (Sequence[tuple[str, str]]): Regex replacements of the
            checkpoint's keys (MMEngine's ``load_checkpoint``).

    Raises:
        FileNotFoundError: ``checkpoint`` is a local path that does not
            exist.
        RuntimeError: The checkpoint misses teacher weights, has others or
            has other shapes.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise ValueError(f'{key} must be the path of the trained teacher '
                         f'checkpoint, got {checkpoint!r}')
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'teacher checkpoint {key}={checkpoint!r} not found (working '
            f'directory {os.getcwd()}). {not_found_hint}'.rstrip())
    try:
        load_checkpoint(teacher, checkpoint, map_location='cpu', strict=True,
                        logger='current', revise_keys=list(revise_keys))
    except RuntimeError as e:
        hint = f' {mismatch_hint}' if mismatch_hint else ''
        raise RuntimeError(
            f'teacher checkpoint {key}={checkpoint!r} does not fit '
            f'{teacher_key} ({type(teacher).__name__}).{hint}\n{e}') from e


def build_teacher(cfg: Union[str, dict, nn.Module],
                  checkpoint: Optional[str] = None,
                  default_scope: Optional[str] = None,
                  **load_kwargs) -> nn.Module:
    """Build a teacher, load its checkpoint strictly and put it in eval mode.

    Args:
        cfg (str | dict | nn.Module): Config path, ``'package::...'`` path,
            model dict (see :func:`build_teacher_model_cfg`) or a built
            module (used as it is).
        checkpoint (str, optional): Trained weights, loaded by
            :func:`load_teacher_checkpoint`; ``None`` loads nothing (the
            caller loads later, e.g. in ``init_weights``).
        default_scope (str, optional): Registry scope of the teacher's
            modules when the model dict sets no ``_scope_`` (e.g.
            ``'mmpretrain'`` for a classifier teacher in a detector
            config); a ``'scope.Type'`` type names its own scope. None
            builds in the current scope.
        **load_kwargs: ``key``, ``teacher_key``, ``not_found_hint``,
            ``mismatch_hint``, ``revise_keys`` of
            :func:`load_teacher_checkpoint`.

    Returns:
        nn.Module: The teacher in eval mode, its parameters frozen; marked
        initialised when its weights were loaded.
    """
    from mmdet.registry import MODELS
    if isinstance(cfg, nn.Module):
        teacher = cfg
    else:
        model_cfg = build_teacher_model_cfg(cfg)
        if default_scope is not None and '_scope_' not in model_cfg:
            t = model_cfg.get('type', '')
            model_cfg['_scope_'] = t.split('.')[0] if isinstance(
                t, str) and '.' in t else default_scope
        teacher = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_teacher_checkpoint(teacher, checkpoint, **load_kwargs)
        # Loaded weights: mmengine's init_weights must not touch them.
        teacher._is_init = True
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher


def _drop_teacher_state(module: nn.Module, state_dict: Dict, prefix: str,
                        local_metadata: Dict, name: str) -> None:
    """State-dict hook: the teacher ``name`` is not part of the weights."""
    head = prefix + name
    for key in [k for k in state_dict if k.startswith(head + '.')]:
        del state_dict[key]
    metadata = getattr(state_dict, '_metadata', {})
    for key in [k for k in metadata
                if k == head or k.startswith(head + '.')]:
        del metadata[key]


def _ignore_missing_teacher(module: nn.Module, incompatible_keys,
                            pattern: 're.Pattern') -> None:
    """Load post-hook: teacher weights come from the teacher's checkpoint."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not pattern.search(k)]


class FrozenTeacherMixin:
    """Hold teacher networks frozen, in eval mode and out of checkpoints.

    Put it first among the bases of an ``nn.Module`` subclass
    (``class MyDistiller(FrozenTeacherMixin, BaseDetector)``) and register
    each teacher with :meth:`add_teacher` in ``__init__``; the mixin's
    :meth:`train` keeps the teachers in eval mode.
    """

    def add_teacher(self, name: str, teacher: nn.Module,
                    keep_eval: KeepEval = True,
                    saved: bool = False) -> nn.Module:
        """Set ``self.<name> = teacher``, frozen.

        Args:
            name (str): Attribute (and state-dict prefix) of the teacher.
            teacher (nn.Module): The teacher (e.g. from
                :func:`build_teacher`).
            keep_eval (bool | callable): Modules of the teacher that stay in
                eval mode under ``model.train()``: True all of it, False
                none, or a predicate on modules (e.g. dropout layers only).
                Defaults to True.
            saved (bool): Keep the teacher in ``state_dict()``: only for a
                teacher trained with the model (a momentum teacher); a
                teacher loaded from its own checkpoint is left out (see the
                module docstring). Defaults to False.

        Returns:
            nn.Module: ``teacher``.
        """
        teacher.requires_grad_(False)
        setattr(self, name, teacher)
        if not hasattr(self, '_teacher_keep_eval'):
            self._teacher_keep_eval: Dict[str, KeepEval] = {}
        self._teacher_keep_eval[name] = keep_eval
        self._keep_teacher_eval(name)
        if not saved:
            self._register_state_dict_hook(
                partial(_drop_teacher_state, name=name))
            self.register_load_state_dict_post_hook(
                partial(_ignore_missing_teacher,
                        pattern=re.compile(rf'(^|\.){re.escape(name)}\.')))
        return teacher

    @property
    def teacher_names(self) -> List[str]:
        """Attributes that hold teachers, in registration order."""
        return list(getattr(self, '_teacher_keep_eval', {}))

    def _keep_teacher_eval(self, name: str) -> None:
        keep_eval = self._teacher_keep_eval[name]
        teacher = getattr(self, name)
        if keep_eval is True:
            teacher.eval()
        elif callable(keep_eval):
            for module in teacher.modules():
                if keep_eval(module):
                    module.eval()

    def train(self, mode: bool = True):
        """Set train/eval mode; the teachers keep their eval parts in eval."""
        super().train(mode)
        for name in self.teacher_names:
            self._keep_teacher_eval(name)
        return self


__all__ = [
    'FrozenTeacherMixin', 'build_teacher', 'build_teacher_model_cfg',
    'load_teacher_checkpoint', 'resolve_config_path'
]
