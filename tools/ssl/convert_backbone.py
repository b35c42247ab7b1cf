"""Extract the backbone of a self-supervised (DINO) checkpoint for transfer.

Writes ``{'state_dict': {<backbone keys>}, 'meta': {...}}`` whose keys are
the backbone's own (``conv1.weight``, ``layer1.0.conv1.weight`` for a
ResNet; ``patch_embed.projection.weight``, ``layers.0.ln1.weight`` for an
mmpretrain ViT), so any detector or classifier config loads it with::

    model = dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='work_dirs/dino_r50_backbone.pth')))

(``--prefix backbone.`` writes the keys under a prefix instead, e.g. for
``load_from`` of a whole model.) The teacher (EMA) weights are the default,
as in DINO's evaluation. ``--check-config`` builds the target model of a
config, loads the weights into its backbone with strict semantics and exits
non-zero on any missing, unexpected or mis-shaped key.

Example::

    python tools/ssl/convert_backbone.py work_dirs/dino_r50/epoch_100.pth \\
        --out work_dirs/dino_r50_backbone.pth \\
        --check-config \\
        configs/retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py
"""
import argparse
import datetime
import importlib.util
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))  # the checkout's cervdet, as tools/train.py

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


def _register_safe_globals() -> None:
    """Allow-list MMEngine's checkpoint types for ``weights_only`` loading
    (``cervdet/utils/checkpoint_compat.py``, read without importing the
    whole package)."""
    path = PROJECT_ROOT / 'cervdet' / 'utils' / 'checkpoint_compat.py'
    if path.is_file():
        spec = importlib.util.spec_from_file_location('_cervdet_ckpt_compat',
                                                      path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:  # tool copied elsewhere: the installed package
        from cervdet.utils import checkpoint_compat as module
    module.register_checkpoint_safe_globals()


def load_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint file (or the file itself when it
    is a plain state dict), loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} not found')
    _register_safe_globals()
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


def build_target(config: str, module: Optional[str] = None):
    """Build the model of ``config`` (no pretrained download) and return
    ``(model, backbone_module, attribute_name)``."""
    import cervdet  # noqa: F401  (registers cervdet's modules)
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(config)
    _strip_pretrained(cfg.model)
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


def _strip_pretrained(cfg) -> None:
    """Drop every ``init_cfg`` of type Pretrained (nothing is downloaded)."""
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for v in cfg.values():
            _strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _strip_pretrained(v)


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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Write the backbone of a DINO checkpoint in the target '
                    "backbone's key layout.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('checkpoint', type=Path, help='DINOPretrain checkpoint')
    p.add_argument('--out', type=Path, required=True, help='output .pth')
    p.add_argument('--source', choices=('teacher', 'student'),
                   default='teacher', help='which network to export')
    p.add_argument('--src-prefix', default=None,
                   help='key prefix of the backbone in the checkpoint '
                        '(default: tried in order: ' + '; '.join(
                            f'{k}: {", ".join(v)}'
                            for k, v in DEFAULT_SRC_PREFIXES.items()) + ')')
    p.add_argument('--prefix', default='',
                   help="prefix of the written keys (e.g. 'backbone.')")
    p.add_argument('--check-config', default=None,
                   help='a config whose model backbone must load the weights '
                        'strictly')
    p.add_argument('--check-module', default=None,
                   help='dotted attribute of the backbone in the --check-config '
                        f'model (default: first of {list(CHECK_MODULES)})')
    p.add_argument('--force-overwrite', action='store_true')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        meta = convert(args.checkpoint, args.out, args.source,
                       args.src_prefix, args.prefix, args.force_overwrite)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {meta['num_tensors']} tensors, "
          f"{meta['num_params'] / 1e6:.2f} M parameters from "
          f"'{meta['src_prefix']}*' ({meta['source']})")
    if args.check_config:
        _, backbone, name = build_target(args.check_config, args.check_module)
        state = torch.load(args.out, map_location='cpu',
                           weights_only=True)['state_dict']
        if args.prefix:
            state = {k[len(args.prefix):]: v for k, v in state.items()
                     if k.startswith(args.prefix)}
        report = check_load(backbone, state)
        if any(report.values()):
            for kind, keys in report.items():
                if keys:
                    print(f'{kind} ({len(keys)}): {keys[:20]}'
                          + (' ...' if len(keys) > 20 else ''),
                          file=sys.stderr)
            print(f'error: the weights do not fit model.{name} of '
                  f'{args.check_config}', file=sys.stderr)
            return 1
        print(f'check: loaded strictly into model.{name} '
              f'({type(backbone).__name__}) of {args.check_config}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
