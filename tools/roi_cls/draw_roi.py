"""Draw one ROI result of ``tools/roi_cls/infer_rois.py`` onto its image.

RESULT_JSON is a per-ROI file (``OUT/rois/<stem>.json``) or ``results.json``
(then pick the ROI with ``--index`` or ``--stem``). The cells are coloured by
attention with their predicted class for the most attended ones, under a
header with the ROI class and probabilities (see
:func:`cervdet.visualization.draw_roi`; the ROI is picked by
:func:`cervdet.visualization.pick_roi_result`).

Example::

    python tools/roi_cls/draw_roi.py OUT/rois/roi_test_00003.json \\
        --out roi_test_00003_vis.jpg
"""
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description='Draw one ROI result.')
    p.add_argument('result_json', help='OUT/rois/<stem>.json or '
                                       'OUT/results.json')
    p.add_argument('--out', required=True, help='output picture (.jpg/.png)')
    p.add_argument('--img', default=None,
                   help='the ROI image (default: the result\'s img_path)')
    p.add_argument('--index', type=int, default=None,
                   help='ROI index in a results.json')
    p.add_argument('--stem', default=None, help='ROI stem in a results.json')
    p.add_argument('--max-label-cells', type=int, default=20)
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace an existing --out')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    import cv2

    from cervdet.visualization import draw_roi, pick_roi_result
    if osp.exists(args.out) and not args.force_overwrite:
        print(f'error: {args.out} exists; pass --force-overwrite to replace '
              'it', file=sys.stderr)
        return 2
    try:
        with open(args.result_json) as f:
            data = json.load(f)
        result = pick_roi_result(data, args.index, args.stem,
                                 args.result_json)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    img_path = args.img or result.get('img_path')
    img = cv2.imread(img_path) if img_path and osp.isfile(img_path) else None
    if img is None:
        print(f'error: cannot read the ROI image {img_path!r}; pass --img',
              file=sys.stderr)
        return 2
    classes = result.get('classes') or list(
        (result.get('roi_scores') or {}).keys())
    canvas = draw_roi(img, result, classes,
                      max_label_cells=args.max_label_cells)
    if not cv2.imwrite(args.out, canvas):
        print(f'error: cannot write {args.out}', file=sys.stderr)
        return 2
    print(f'{args.out}: {result.get("roi_class")} with '
          f'{len(result.get("cells") or [])} cells')
    return 0


if __name__ == '__main__':
    sys.exit(main())
