"""Draw a test image's ground truth (left) next to its predictions (right).

Usage:
    python tools/analysis_tools/draw_pred_vs_gt.py CONFIG PREDICTIONS.pkl \
        --out-file pred_vs_gt.png [--img-id ID] [--score-thr 0.3]

PREDICTIONS.pkl is what ``tools/test.py --out`` writes. Without ``--img-id``
the test image with the most ground-truth boxes is drawn. On point-annotated
sets (CRIC, ``tools/dataset_converters/cric_to_coco.py``) the marked nuclei
are drawn on both halves: a dot in the class colour for each boxed cell, a
small green ring for each marked cell of a background class (NILM), so a
prediction can be checked against the cells the pathologists marked
(:func:`cervdet.visualization.pred_vs_gt.draw_pred_vs_gt`).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('predictions', help='.pkl from tools/test.py --out')
    parser.add_argument('--out-file', required=True)
    parser.add_argument('--img-id', type=int, default=None)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--force-overwrite', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if osp.exists(args.out_file) and not args.force_overwrite:
        sys.exit(f'{args.out_file} exists: choose another --out-file or '
                 'pass --force-overwrite.')
    import mmcv
    from mmengine.fileio import load
    from mmengine.registry import init_default_scope

    from cervdet.utils.launch import load_config
    from cervdet.visualization.pred_vs_gt import draw_pred_vs_gt

    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    try:
        res = draw_pred_vs_gt(cfg, load(args.predictions), args.img_id,
                              args.score_thr)
    except ValueError:
        sys.exit(f'--img-id {args.img_id} is not in {args.predictions}')
    mmcv.imwrite(res['image'][..., ::-1], args.out_file)
    if res['num_points']:
        print(f"{res['num_points']} marked nuclei drawn as dots on both "
              'halves')
    print(f"{args.out_file}: {osp.basename(res['img_path'])}, "
          f"{res['num_gt']} ground-truth boxes (left), {res['num_pred']} "
          f'predictions with score >= {args.score_thr} (right)')


if __name__ == '__main__':
    main()
