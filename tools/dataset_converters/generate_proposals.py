"""Cell-candidate box proposals for weakly supervised detection (OICR), in the
format of mmdet's ``proposal_file``: the command line of
:mod:`cervdet.datasets.proposals` (stain maps, blobs, scores and tiers are
described there).

Output: one pickle per COCO file, ``{'<image folder name>/<file name>':
{'bboxes': float32 [N, 4] xyxy, 'scores': float32 [N] descending}}``, read by
``proposal_file`` of mmdet's ``BaseDetDataset`` and
:class:`cervdet.datasets.WeakCocoDataset`.

Per split the tool prints the recall of the ground-truth boxes at IoU 0.5 and
0.7, the mean number of proposals per image and the seconds per image.

Examples::

    # every split of a data root (annotations/<split>.json, images/<split>/)
    # -> <data-root>/proposals/<split>.pkl
    python tools/dataset_converters/generate_proposals.py \\
        --data-root data/cervical-mosaic-bethesda-512

    # one COCO file
    python tools/dataset_converters/generate_proposals.py \\
        --ann-file ../shared/data/ccagt_sample/CCAgT_COCO_OD.json \\
        --img-dir ../shared/data/ccagt_sample/images --file-suffix .jpg \\
        --out /tmp/ccagt_proposals.pkl
"""
import argparse
import json
import os.path as osp
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from cervdet.datasets.proposals import (  # noqa: E402
    SPLITS,
    ProposalConfig,
    format_stats,
    generate_for_coco,
    split_jobs,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    d = ProposalConfig()
    p = argparse.ArgumentParser(
        description='Cell-candidate proposals (colour + blob analysis) in '
                    "the format of mmdet's proposal_file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_argument_group('input / output (give --data-root, or '
                               '--ann-file with --img-dir and --out)')
    src.add_argument('--data-root', type=Path,
                     help='folder with annotations/<split>.json and '
                          'images/<split>/')
    src.add_argument('--splits', nargs='+', default=None,
                     help=f'splits of --data-root (default: those of '
                          f'{SPLITS} that exist)')
    src.add_argument('--out-dir', type=Path,
                     help='where <split>.pkl go (default: '
                          '<data-root>/proposals)')
    src.add_argument('--ann-file', type=Path, help='one COCO JSON')
    src.add_argument('--img-dir', type=Path, help='its image folder')
    src.add_argument('--out', type=Path, help='output .pkl of --ann-file')
    src.add_argument('--file-suffix', default='',
                     help="append to file_name when missing (e.g. '.jpg')")
    g = p.add_argument_group('generator')
    g.add_argument('--max-per-img', type=int, default=d.max_per_img)
    g.add_argument('--min-size', type=int, default=d.min_size,
                   help='smallest proposal side (px)')
    g.add_argument('--nms-iou', type=float, default=d.nms_iou,
                   help='de-duplication IoU')
    g.add_argument('--windows', action='store_true',
                   help='add a coarse multi-scale sliding-window set (fills '
                        'up to --max-per-img)')
    g.add_argument('--bg-window', type=int, default=d.bg_window,
                   help='local glass estimate over windows of this size (px, '
                        '> largest cell; 0: one colour per image)')
    p.add_argument('--workers', type=int, default=1, help='processes')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace proposal files that exist already')
    args = p.parse_args(argv)
    if (args.data_root is None) == (args.ann_file is None):
        p.error('give either --data-root or --ann-file')
    if args.ann_file is not None and (args.img_dir is None or
                                      args.out is None):
        p.error('--ann-file needs --img-dir and --out')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    cfg = ProposalConfig(max_per_img=args.max_per_img, min_size=args.min_size,
                         nms_iou=args.nms_iou, windows=args.windows,
                         bg_window=args.bg_window)
    if args.ann_file is not None:
        jobs = [('proposals', args.ann_file, args.img_dir, args.out)]
    else:
        jobs = split_jobs(args.data_root, args.splits, args.out_dir)
        if not jobs:
            print(f'error: no annotations/<split>.json in {args.data_root}',
                  file=sys.stderr)
            return 2
    existing = [str(out) for *_, out in jobs if Path(out).exists()]
    if existing and not args.force_overwrite:
        print(f'error: {", ".join(existing)} exist(s): choose another '
              '--out-dir / --out, or pass --force-overwrite to replace',
              file=sys.stderr)
        return 2
    lines = []
    for name, ann, img_dir, out in jobs:
        if not Path(ann).is_file():
            print(f'error: {ann} not found', file=sys.stderr)
            return 2
        try:
            stats = generate_for_coco(ann, img_dir, out, cfg,
                                      args.file_suffix, args.workers,
                                      desc=name)
        except (FileNotFoundError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 2
        lines.append(format_stats(name, stats) + f' -> {out}')
        print(lines[-1])
    if len(lines) > 1:
        print('summary (settings: ' + json.dumps(asdict(cfg)) + '):')
        print('\n'.join('  ' + line for line in lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
