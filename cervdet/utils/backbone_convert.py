"""Extract the backbone of a self-supervised (DINO) checkpoint for transfer.

:func:`convert` writes ``{'state_dict': {<backbone keys>}, 'meta': {...}}``
whose keys are the backbone's own (``conv1.weight``,
``layer1.0.conv1.weight`` for a ResNet; ``patch_embed.projection.weight``,
``layers.0.ln1.weight`` for an mmpretrain ViT), so any detector or
classifier config loads it with::

    model = dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='work_dirs/dino_r50_backbone.pth')))

(``prefix='backbone.'`` writes the keys under a prefix instead, e.g. for
``load_from`` of a whole model.) The teacher (EMA) weights are the default,
as in DINO's evaluation. :func:`check_backbone_file` builds the target model
of a config and loads the weights into its backbone with strict semantics.
Command line: ``tools/ssl/convert_backbone.py``.
"""
import datetime
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .checkpoint_compat import register_checkpoint_safe_globals

#: Source prefixes tried in order when ``--src-prefix`` is not given.
DEFAULT_SRC_PREFIXES: Dict[str, Tuple[str, ...]] = {
    'teacher': ('teacher.backbone.', 'teacher_backbone.', 'teacher.0.',
                'target_net.backbone.', 'target_net.0.',
                'momentum_backbone.'),
    'student': ('backbone.', 'student.backbone.', 'student_backbone.',
                'online_net.backbone.', 'online_net.0.'),
}
#: Dotted attributes tried to find the backbone of a ``--check-config`` model.
CHECK_MODULES = ('backbone', 'cell_encoder', 'cell_encoder.backbone',
                 'encoder')


def load_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint file (or the file itself when it
    is a plain state dict), loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} not found')
    register_checkpoint_safe_globals()
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        ckpt = ckpt['state_dict']
    elif isinstance(ckpt, dict) and isinstance(ckpt.get('model'), dict):
        ckpt = ckpt['model']
    if not isinstance(ckpt, dict) or not ckpt:
        raise ValueError(f'{path} holds no state dict (expected a dict of '
                         'tensors or {"state_dict": ...})')
    return ckpt


def key_prefixes(keys: Sequence[str], depth: int = 2) -> List[str]:
    """Distinct leading ``depth`` dotted parts of ``keys`` (for messages).

    A part ending a ``*backbone`` name stops there, e.g. ``teacher.backbone.``
    and ``backbone.``.
    """
    found = OrderedDict()
    for k in keys:
        parts = k.split('.')
        cut = next((i + 1 for i, p in enumerate(parts[:-1])
                    if p.endswith('backbone')), min(depth, len(parts) - 1))
        found['.'.join(parts[:cut]) + '.' if cut else ''] = None
    return list(found)


def extract_backbone(state_dict: Dict[str, torch.Tensor],
                     source: str = 'teacher',
                     src_prefix: Optional[str] = None
                     ) -> Tuple[Dict[str, torch.Tensor], str]:
    """Keys under one prefix, with the prefix removed.

    Args:
        state_dict (dict[str, Tensor]): Full model state dict.
        source (str): ``'teacher'`` or ``'student'`` (chooses the default
            prefixes of :data:`DEFAULT_SRC_PREFIXES`).
        src_prefix (str, optional): Explicit prefix (``''`` takes all keys).

    Returns:
        tuple[dict[str, Tensor], str]: Backbone state dict and the prefix
        used.
    """
    if src_prefix is not None:
        candidates: Sequence[str] = (src_prefix, )
    elif source in DEFAULT_SRC_PREFIXES:
        candidates = DEFAULT_SRC_PREFIXES[source]
    else:
        raise ValueError(f'--source must be teacher or student, got {source!r}')
    for prefix in candidates:
        out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                          if k.startswith(prefix))
        if out:
            return out, prefix
    raise KeyError(
        f'no checkpoint key starts with {list(candidates)} ({source}); the '
        f'checkpoint has the prefixes {key_prefixes(list(state_dict))}: pass '
        'one of them with --src-prefix')


def convert(ckpt: Path, out: Path, source: str = 'teacher',
            src_prefix: Optional[str] = None, prefix: str = '',
            force_overwrite: bool = False) -> Dict:
    """Read ``ckpt``, write the backbone checkpoint ``out``.

    Returns:
        dict: The ``meta`` written (with ``num_tensors``, ``src_prefix``).
    """
    out = Path(out)
    if out.exists() and not force_overwrite:
        raise FileExistsError(f'{out} exists: pass --force-overwrite to '
                              'replace it or choose another --out')
    full = load_state_dict(ckpt)
    backbone, used = extract_backbone(full, source, src_prefix)
    state = OrderedDict((prefix + k, v.detach().clone().cpu())
                        for k, v in backbone.items())
    meta = dict(tool='tools/ssl/convert_backbone.py',
                source_checkpoint=str(ckpt), source=source, src_prefix=used,
                prefix=prefix, num_tensors=len(state),
                num_params=int(sum(v.numel() for v in state.values()
                                   if v.is_floating_point())),
                created=datetime.datetime.now().isoformat(timespec='seconds'))
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=state, meta=meta), out)
    return meta


def build_target(config: str, module: Optional[str] = None
                 ) -> Tuple[torch.nn.Module, torch.nn.Module, str]:
    """Build the model of ``config`` (no pretrained download).

    Args:
        config (str): Config file.
        module (str, optional): Dotted attribute of the backbone (default:
            the first of :data:`CHECK_MODULES` the model has).

    Returns:
        tuple: ``(model, backbone_module, attribute_name)``.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(config)
    strip_pretrained(cfg.model)
    scope = cfg.get('default_scope', 'mmdet')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    names = (module, ) if module else CHECK_MODULES
    for name in names:
        target = model
        for part in name.split('.'):
            target = getattr(target, part, None)
            if target is None:
                break
        if isinstance(target, torch.nn.Module):
            return model, target, name
    raise AttributeError(f'the model of {config} has no backbone at '
                         f'{list(names)}: pass --check-module')


def strip_pretrained(cfg) -> None:
    """Drop every ``init_cfg`` of type Pretrained (nothing is downloaded).

    Args:
        cfg (dict | list): A model config, changed in place.
    """
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for v in cfg.values():
            strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            strip_pretrained(v)


def check_load(backbone: torch.nn.Module,
               state: Dict[str, torch.Tensor]) -> Dict[str, List[str]]:
    """Load ``state`` into ``backbone``; report missing/unexpected/shape.

    Returns:
        dict: ``missing``, ``unexpected`` and ``shape_mismatch`` key lists
        (all empty means a strict load succeeded and was applied).
    """
    own = backbone.state_dict()
    mismatch = [f'{k}: checkpoint {tuple(v.shape)} vs model '
                f'{tuple(own[k].shape)}' for k, v in state.items()
                if k in own and own[k].shape != v.shape]
    report = dict(missing=sorted(set(own) - set(state)),
                  unexpected=sorted(set(state) - set(own)),
                  shape_mismatch=mismatch)
    if not any(report.values()):
        backbone.load_state_dict(state, strict=True)
    return report


def check_backbone_file(path: Path, config: str, module: Optional[str] = None,
                        prefix: str = '') -> Tuple[Dict[str, List[str]],
                                                   torch.nn.Module, str]:
    """Load a written backbone file into the backbone of ``config``.

    Args:
        path (Path): The file :func:`convert` wrote.
        config (str): Config whose model's backbone must take the weights.
        module (str, optional): Dotted attribute of that backbone.
        prefix (str): Prefix of the written keys (removed first).

    Returns:
        tuple: ``(report, backbone, attribute_name)``; ``report`` as
        :func:`check_load` (all lists empty: loaded strictly).
    """
    _, backbone, name = build_target(config, module)
    state = torch.load(path, map_location='cpu',
                       weights_only=True)['state_dict']
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
    return check_load(backbone, state), backbone, name


__all__ = ['DEFAULT_SRC_PREFIXES', 'CHECK_MODULES', 'load_state_dict',
           'key_prefixes', 'extract_backbone', 'convert', 'build_target',
           'strip_pretrained', 'check_load', 'check_backbone_file']
