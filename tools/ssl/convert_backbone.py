"""Extract the backbone of a self-supervised (DINO) checkpoint for transfer.

Writes ``{'state_dict': {<backbone keys>}, 'meta': {...}}`` in the target
backbone's own key layout (:mod:`cervdet.utils.backbone_convert`), loadable
with ``backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT)``
(``--prefix backbone.`` writes the keys under a prefix instead). The teacher
(EMA) weights are the default, as in DINO's evaluation. ``--check-config``
builds the target model of a config, loads the weights into its backbone
with strict semantics and exits non-zero on any missing, unexpected or
mis-shaped key.

Example::

    python tools/ssl/convert_backbone.py work_dirs/dino_r50/epoch_100.pth \\
        --out work_dirs/dino_r50_backbone.pth \\
        --check-config \\
        configs/retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.utils.backbone_convert import (  # noqa: E402
    CHECK_MODULES,
    DEFAULT_SRC_PREFIXES,
    check_backbone_file,
    convert,
)


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
        report, backbone, name = check_backbone_file(
            args.out, args.check_config, args.check_module, args.prefix)
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
