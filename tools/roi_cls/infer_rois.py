"""Classify every ROI image of a folder (or one image) with a trained ROI
classifier; the cells come from a cervdet detector or an annotation file.

Writes::

    OUT/results.json        # {"run": {...}, "results": [per-ROI result]}
    OUT/rois/<stem>.json    # one per ROI (the same dicts)
    OUT/vis/<stem>.jpg      # cells coloured by attention (not with
                            # --no-pictures), see tools/roi_cls/draw_roi.py

A per-ROI result is :class:`cervdet.apis.ROIInferencer`'s (``roi_class``,
``roi_scores``, ``cells`` with ``bbox``, ``attention``, ``det_score``,
``cell_class``...) plus ``stem``; an image that cannot be processed
(missing, corrupt, not in ``--ann-file``) gets ``roi_class`` None and an
``error`` and the others go on. ``results.json`` is never overwritten without
``--force-overwrite``. The loop over the ROIs is
:func:`cervdet.apis.infer_roi_images`.

Examples::

    # cells from a detector
    python tools/roi_cls/infer_rois.py ROI_CONFIG ROI_CKPT data/rois/ \\
        --out-dir work_dirs/roi_infer --det-config DET_CONFIG \\
        --det-checkpoint DET_CKPT --det-score-thr 0.3 \\
        --encoder-checkpoint r50.pth --encoder-checkpoint-prefix backbone.
    # cells from an annotation file (COCO, e.g. build_roi_set.py's)
    python tools/roi_cls/infer_rois.py ROI_CONFIG ROI_CKPT \\
        data/cervical-roi-512/images/test --ann-file \\
        data/cervical-roi-512/annotations/test.json --out-dir OUT
"""
import argparse
import os.path as osp
import platform
import sys
import time
from typing import Optional, Sequence

# the checkout's cervdet, as tools/train.py
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from cervdet.utils.image_files import list_images  # noqa: E402
from cervdet.utils.json_files import atomic_json  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='ROI classification of a folder of images (cells from '
                    'a detector or an annotation file).')
    p.add_argument('roi_config', help='ROI classifier config')
    p.add_argument('roi_checkpoint', help='ROI classifier checkpoint')
    p.add_argument('input', help='an image or a folder of images')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--det-config', default=None, help='detector config')
    p.add_argument('--det-checkpoint', default=None,
                   help='detector checkpoint')
    p.add_argument('--det-score-thr', type=float, default=0.3,
                   help='lowest detection score of a cell')
    p.add_argument('--det-max-cells', type=int, default=1000,
                   help='most cells per ROI (best scores)')
    p.add_argument('--ann-file', default=None,
                   help='COCO annotation file giving the cell boxes (instead '
                        'of a detector); images are matched by file name')
    p.add_argument('--encoder-checkpoint', default=None,
                   help='cell encoder weights (models trained on cached '
                        'features: the checkpoint the cache was made with)')
    p.add_argument('--encoder-checkpoint-prefix', default='',
                   help='key prefix of the encoder, e.g. "backbone."')
    p.add_argument('--allow-random-encoder', action='store_true',
                   help='accept a random cell encoder for a cached-feature '
                        'model (only right if the cache came from it)')
    p.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    p.add_argument('--no-pictures', action='store_true',
                   help='do not write OUT/vis/*.jpg')
    p.add_argument('--max-label-cells', type=int, default=20,
                   help='cells tagged with their class in the pictures')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace an existing OUT/results.json')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    if (args.det_config is None) == (args.ann_file is None):
        print('error: give the cells either with --det-config (and '
              '--det-checkpoint) or with --ann-file', file=sys.stderr)
        return 2
    results_path = osp.join(args.out_dir, 'results.json')
    if osp.exists(results_path) and not args.force_overwrite:
        print(f'error: {results_path} exists; refusing to overwrite it. Pass '
              '--force-overwrite to replace it, or choose another --out-dir.',
              file=sys.stderr)
        return 2
    try:
        images = list_images(args.input)
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    from cervdet.apis import (
        ROIInferencer,
        infer_roi_images,
        load_coco_boxes,
        summarize_roi_results,
    )

    boxes_of = load_coco_boxes(args.ann_file) if args.ann_file else None
    try:
        inferencer = ROIInferencer(
            args.roi_config, args.roi_checkpoint,
            det_config=args.det_config, det_checkpoint=args.det_checkpoint,
            det_score_thr=args.det_score_thr,
            det_max_cells=args.det_max_cells,
            encoder_checkpoint=args.encoder_checkpoint,
            encoder_checkpoint_prefix=args.encoder_checkpoint_prefix,
            allow_random_encoder=args.allow_random_encoder,
            device=args.device)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    results = infer_roi_images(
        inferencer, images, args.out_dir,
        input_root=args.input if osp.isdir(args.input) else
        osp.dirname(args.input),
        boxes_of=boxes_of, ann_file=args.ann_file,
        pictures=not args.no_pictures, max_label_cells=args.max_label_cells,
        progress=not args.no_progress)
    dt = max(time.perf_counter() - t0, 1e-9)

    summary = summarize_roi_results(results, inferencer.classes, dt)
    run = dict(
        tool='tools/roi_cls/infer_rois.py', argv=list(argv or sys.argv[1:]),
        roi_config=args.roi_config, roi_checkpoint=args.roi_checkpoint,
        det_config=args.det_config, det_checkpoint=args.det_checkpoint,
        det_score_thr=args.det_score_thr, ann_file=args.ann_file,
        encoder_checkpoint=args.encoder_checkpoint,
        attached_encoder=inferencer.attached_encoder,
        classes=inferencer.classes, cell_size=inferencer.cell_size,
        device=args.device, host=platform.node(), **summary,
        time=time.strftime('%Y-%m-%d %H:%M:%S'))
    atomic_json(results_path, dict(run=run, results=results), indent=1)
    counts_txt = ', '.join(f'{c} {n}' for c, n in run['class_counts'].items())
    print(f'{len(results)} ROIs ({run["num_classified"]} classified, '
          f'{run["num_errors"]} errors, {run["num_without_cells"]} without '
          f'cells): {counts_txt}; {len(results) / dt:.2f} ROIs/s -> '
          f'{results_path}')
    for r in [r for r in results if r.get('error')][:10]:
        print(f'  error: {r["img_path"]}: {r["error"]}', file=sys.stderr)
    return 0 if run['num_classified'] or not results else 1


if __name__ == '__main__':
    sys.exit(main())
