"""Checkpoint files a run can trust: completeness, resume choice, fit.

MMEngine's auto-resume reads ``<work_dir>/last_checkpoint``, which holds an
absolute path: a moved work dir then finds nothing (and trains from scratch,
overwriting the checkpoints it holds), a copied one resumes from the original
dir's file, and a dir without that file (checkpoints copied in, or a save
killed before the file was written) trains from scratch. The helpers here
choose from the files that are in the work dir itself and check that a file
is complete before it is used.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import torch

#: ``epoch_<n>.pth`` / ``iter_<n>.pth`` (CheckpointHook's default names).
CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


class ResumeError(FileNotFoundError):
    """``--resume`` found no checkpoint it can continue from."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model of the config."""


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint, or None when it is.

    Checkpoints written by ``torch.save`` are zip archives: a truncated file
    (a copy or a save killed mid-write) has no central directory, a damaged
    one fails a member's CRC. Every member is read once (CRC check), the
    tensors are not unpickled. Files in torch's legacy (non-zip) format are
    checked by loading them.

    Args:
        path (str): The checkpoint file.

    Returns:
        str | None: A one-line reason, e.g. ``'truncated (no zip central
        directory)'``.
    """
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file'
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            return f'damaged zip archive ({e})'
        if bad is not None:
            return f'damaged: member {bad} fails its CRC check'
        return None
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK'):
        return 'truncated (a zip archive without its central directory)'
    try:  # legacy torch format
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure makes it unusable
        return f'unreadable ({type(e).__name__}: {str(e)[:200]})'
    return None


def numbered_checkpoints(work_dir: str,
                         prefer: Optional[str] = None) -> List[str]:
    """``epoch_<n>.pth`` / ``iter_<n>.pth`` files of ``work_dir``, newest
    (highest ``n``) first.

    Args:
        work_dir (str): Folder to list (not recursive).
        prefer (str, optional): ``'epoch'`` or ``'iter'``: files of that kind
            come first (a run saves one kind; the other is listed after).

    Returns:
        list[str]: Paths inside ``work_dir``.
    """
    if not osp.isdir(work_dir):
        return []
    found: List[Tuple[int, int, str]] = []
    for name in os.listdir(work_dir):
        m = CHECKPOINT_NAME.match(name)
        if m:
            kind_rank = 0 if prefer in (None, m.group(1)) else 1
            found.append((kind_rank, -int(m.group(2)), name))
    return [osp.join(work_dir, name) for _, _, name in sorted(found)]


def find_resume_checkpoint(work_dir: str, prefer: Optional[str] = None,
                           ) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest complete checkpoint of ``work_dir`` (searched there only).

    Candidates, in order: the numbered checkpoints (newest first, see
    :func:`numbered_checkpoints`), then the file named by ``last_checkpoint``
    when it is another name (custom ``filename_tmpl``); ``last_checkpoint``
    is read for its file *name* only and looked up in ``work_dir``, so a
    moved or copied work dir resumes from its own files.

    Args:
        work_dir (str): The run's work dir.
        prefer (str, optional): Checkpoint kind of the run (``'epoch'`` or
            ``'iter'``).

    Returns:
        tuple: ``(path or None, skipped)``, ``skipped`` holding
        ``(path, reason)`` of each newer file that is incomplete.
    """
    candidates = numbered_checkpoints(work_dir, prefer)
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            name = osp.basename(f.read().strip())
        path = osp.join(work_dir, name)
        if name and path not in candidates and osp.isfile(path):
            candidates.append(path)
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def set_aside(path: str, suffix: str = '.incomplete') -> str:
    """Rename ``path`` to ``path + suffix`` (``.1``, ``.2``... when taken),
    so a run that saves under its name does not overwrite it."""
    target, n = path + suffix, 0
    while osp.exists(target):
        n += 1
        target = f'{path}{suffix}.{n}'
    os.replace(path, target)
    return target


def _shape(v) -> Optional[Tuple[int, ...]]:
    return tuple(v.shape) if hasattr(v, 'shape') else None


def format_mismatch(missing: Sequence[str], unexpected: Sequence[str],
                    shapes: Sequence[Tuple[str, tuple, tuple]],
                    max_keys: int = 8) -> Optional[str]:
    """One message for the keys and shapes that keep a checkpoint from
    loading (None when all lists are empty).

    Args:
        missing (list[str]): Keys of the model absent from the checkpoint.
        unexpected (list[str]): Keys of the checkpoint the model lacks.
        shapes (list[tuple]): ``(key, checkpoint shape, model shape)``.
        max_keys (int): Keys listed per kind of problem (with more, the
            counts per top-level module are given first).
    """
    if not (missing or unexpected or shapes):
        return None

    def listed(keys: Sequence[str]) -> str:
        if len(keys) <= max_keys:
            return ', '.join(keys)
        groups: Dict[str, int] = {}
        for k in keys:
            top = k.split(' ')[0].split('.')[0]
            groups[top] = groups.get(top, 0) + 1
        where = ', '.join(f'{g}.* {n}' for g, n in groups.items())
        return (f'[{where}] ' + ', '.join(keys[:max_keys]) +
                f', ... (+{len(keys) - max_keys})')

    parts = []
    if missing:
        parts.append(f'{len(missing)} keys of the model missing in the '
                     f'checkpoint: {listed(list(missing))}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected keys in the checkpoint: '
                     f'{listed(list(unexpected))}')
    if shapes:
        parts.append(f'{len(shapes)} shape mismatches (checkpoint vs model): '
                     + listed([f'{k} {list(a)} vs {list(b)}'
                               for k, a, b in shapes]))
    return '; '.join(parts)


def state_dict_mismatch(model_state: Dict[str, torch.Tensor],
                        ckpt_state: Dict[str, torch.Tensor],
                        max_keys: int = 8,
                        ) -> Optional[str]:
    """What keeps ``ckpt_state`` from loading strictly into a model, from
    the two state dicts alone (see :func:`load_mismatch` for a check that
    runs the model's own load hooks).

    Args:
        model_state (dict): ``model.state_dict()``.
        ckpt_state (dict): The checkpoint's ``state_dict`` (``module.``
            prefixes already stripped).
        max_keys (int): Keys listed per kind of problem.

    Returns:
        str | None: None when every key is present in both with the same
        shape; else the missing keys, unexpected keys and shape mismatches
        (counts and the first ``max_keys`` of each).
    """
    missing = [k for k in model_state if k not in ckpt_state]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shapes = [(k, _shape(ckpt_state[k]), _shape(model_state[k]))
              for k in model_state
              if k in ckpt_state and _shape(ckpt_state[k]) is not None
              and _shape(ckpt_state[k]) != _shape(model_state[k])]
    return format_mismatch(missing, unexpected, shapes, max_keys)


def load_mismatch(model: torch.nn.Module,
                  ckpt_state: Dict[str, torch.Tensor]) -> Optional[str]:
    """Load ``ckpt_state`` into ``model`` and report what did not fit.

    Unlike :func:`state_dict_mismatch`, the model's own load hooks run
    (a distiller that refills its frozen teacher, a model that ignores
    the weights of an auxiliary network), so only real mismatches count.

    Returns:
        str | None: As :func:`state_dict_mismatch`; None when the weights
        loaded completely (they are then in ``model``).
    """
    model_state = model.state_dict()
    shapes = [k for k in model_state
              if k in ckpt_state and _shape(ckpt_state[k]) is not None
              and _shape(ckpt_state[k]) != _shape(model_state[k])]
    if shapes:
        return state_dict_mismatch(model_state, ckpt_state)
    result = model.load_state_dict(dict(ckpt_state), strict=False)
    return format_mismatch(list(result.missing_keys),
                           list(result.unexpected_keys), [])


def checkpoint_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint, ``module.`` prefixes stripped (as
    MMEngine's ``load_checkpoint`` does)."""
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else checkpoint
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def strip_key_prefix(state: Dict[str, torch.Tensor], prefix: str,
                     source: str, flag: str) -> Dict[str, torch.Tensor]:
    """The weights under ``prefix`` (e.g. ``'backbone.'``), without it.

    Args:
        state (dict[str, Tensor]): A state dict.
        prefix (str): Key prefix; ``''`` keeps ``state`` as it is.
        source (str): Checkpoint named in the error.
        flag (str): Command line flag of the prefix named in the error
            (e.g. ``'--checkpoint-prefix'``).

    Returns:
        dict[str, Tensor]: ``{key without prefix: value}``.

    Raises:
        ValueError: When no key starts with ``prefix``.
    """
    if not prefix:
        return state
    out = {k[len(prefix):]: v for k, v in state.items()
           if k.startswith(prefix)}
    if not out:
        raise ValueError(f'{source}: no key starts with {flag} {prefix!r}; '
                         f'keys look like {list(state)[:3]}')
    return out


def check_checkpoint_fits(model: torch.nn.Module, filename: str,
                          config_name: str = 'the config') -> None:
    """Raise :class:`CheckpointMismatchError` unless every weight of
    ``model`` is in checkpoint ``filename`` with its shape, and nothing
    else is.

    Args:
        model (nn.Module): The model (wrappers and TTA models are unwrapped
            through ``.module``).
        filename (str): Checkpoint path (or URL MMEngine can load).
        config_name (str): Config named in the message.
    """
    from mmengine.model import is_model_wrapper
    from mmengine.runner.checkpoint import _load_checkpoint
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    if is_model_wrapper(model):
        model = model.module
    # test-time augmentation wraps the detector as ``module``
    if 'TTAModel' in type(model).__name__ and hasattr(model, 'module'):
        model = model.module
    problem = load_mismatch(model, checkpoint_state_dict(checkpoint))
    if problem is not None:
        raise CheckpointMismatchError(
            f'checkpoint {filename} does not fit the model of {config_name} '
            f'({type(model).__name__}): {problem}. It was trained with '
            'another config (architecture, width or number of classes): '
            'use that config (tools/train.py saved a copy in its work dir).')


__all__ = ['ResumeError', 'CheckpointMismatchError', 'checkpoint_problem',
           'numbered_checkpoints', 'find_resume_checkpoint', 'set_aside',
           'state_dict_mismatch', 'format_mismatch', 'load_mismatch',
           'checkpoint_state_dict', 'CHECKPOINT_NAME', 'strip_key_prefix',
           'check_checkpoint_fits']
