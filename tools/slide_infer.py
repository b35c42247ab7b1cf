"""Screen whole slides or large fields with any cervdet / mmdet detector.

    python tools/slide_infer.py CONFIG CHECKPOINT SLIDE_OR_FOLDER --out-dir DIR
    bash tools/dist_slide_infer.sh CONFIG CHECKPOINT SLIDE_OR_FOLDER N --out-dir DIR

Inputs: WSIs (.svs .ndpi .mrxs .tiff ... through openslide-python +
openslide-bin, tiffslide or tifffile) and plain JPEG/PNG/TIFF fields. Every
slide gets ``DIR/<slide stem>/`` with ``detections.csv`` / ``.parquet`` (level-0
coordinates, class, score), ``detections.geojson`` (QuPath), ``gallery.png``
(top cells), ``overview.png``, ``cells_topk.npz`` (top-k cells with features,
for slide MIL models) and ``report.json`` (timing, tiles, counts, slide
scores). ``DIR/summary.json`` lists every slide's status; it is merged
across runs (a slide keeps its row until a later run processes it again).

Resume: run the same command again. Finished slides are skipped (with a
note when the checkpoint or settings changed since), an interrupted slide
continues from its finished tiles (``partial/``). A slide that cannot be
read (corrupt, truncated, unsupported pixels), at any step, is reported and
the others go on; the exit code is then 1. ``--overwrite`` redoes finished
slides (their outputs are replaced).

See docs/slide_screening.md; the stages are in cervdet/apis/slide/.
"""
import argparse
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Tiled detection over whole slides / large fields')
    p.add_argument('config', help='detector config')
    p.add_argument('checkpoint', help='detector checkpoint')
    p.add_argument('slides', help='a slide / large image, or a folder of them')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--device', default=None,
                   help='cpu, cuda:0 ... (default: the process GPU if any)')
    g = p.add_argument_group('tiles')
    g.add_argument('--tile-size', type=int, default=512,
                   help='tile side at the reading resolution (px)')
    g.add_argument('--overlap', type=int, default=128,
                   help='tile overlap (px); keep it >= the largest cell')
    g.add_argument('--target-mpp', type=float, default=None,
                   help='read at this resolution (um/px; the detector\'s '
                   'training resolution); default: level 0')
    g.add_argument('--mpp', type=float, default=None,
                   help='level-0 um/px of inputs without metadata (plain '
                   'images), or to override the slide\'s')
    g.add_argument('--backend', default='auto',
                   choices=['auto', 'image', 'openslide', 'tiffslide',
                            'tifffile'])
    g.add_argument('--batch-size', type=int, default=4)
    g.add_argument('--num-workers', type=int, default=2,
                   help='reader processes per detector process')
    g.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32',
                   help='bf16: bfloat16 network on CPUs with AMX / '
                   'AVX512-BF16 or Ampere+ GPUs (faster; scores move by '
                   '~1e-3); see docs/benchmarks.md')
    g.add_argument('--no-optimize', action='store_true',
                   help='run the detector as built (no BatchNorm folding, '
                   'channels-last or score threshold in the head)')
    g.add_argument('--no-mask', action='store_true',
                   help='read every tile (no blank-glass mask)')
    g.add_argument('--min-tissue', type=float, default=0.02,
                   help='smallest tissue fraction of a read tile')
    g = p.add_argument_group('detections')
    g.add_argument('--score-thr', type=float, default=0.05)
    g.add_argument('--merge', default='nms', choices=['nms', 'ios', 'centre'])
    g.add_argument('--class-agnostic', action='store_true',
                   help='merge boxes of different classes too')
    g.add_argument('--iou-thr', type=float, default=0.5)
    g.add_argument('--ios-thr', type=float, default=0.6)
    g.add_argument('--centre-dist-um', type=float, default=6.0)
    g.add_argument('--edge-margin', type=float, default=2.0,
                   help='drop boxes this close (px) to interior tile edges')
    g = p.add_argument_group('slide call')
    g.add_argument('--top-k', type=int, default=32)
    g.add_argument('--topk-mean-k', type=int, default=10)
    g.add_argument('--abnormal-classes', nargs='+', default=None)
    g.add_argument('--cell-feature-size', type=int, default=64,
                   help='crop side of the top-k cells embedded by the '
                   'detector backbone (0: no features)')
    g.add_argument('--mil-config', default=None)
    g.add_argument('--mil-checkpoint', default=None)
    g.add_argument('--thresholds', default=None,
                   help='JSON from tools/slide/calibrate_thresholds.py')
    g.add_argument('--gallery-top-n', type=int, default=10)
    g.add_argument('--no-parquet', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bar over the tiles')
    p.add_argument('--overwrite', action='store_true',
                   help='redo finished slides (replaces their outputs)')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from mmengine.dist import get_dist_info

    from cervdet.apis.slide import (
        SlideInferencer,
        SlideSettings,
        describe,
        list_slides,
        summary_row,
        write_summary,
    )
    from cervdet.utils.dist import init_dist_device_agnostic, shutdown_dist

    if args.launcher == 'pytorch':
        init_dist_device_agnostic()
    rank, world = get_dist_info()
    slides = list_slides(args.slides)
    device = args.device
    if device is None and torch.cuda.is_available():
        device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
    settings = SlideSettings.from_kwargs(
        tile_size=args.tile_size, overlap=args.overlap,
        target_mpp=args.target_mpp, mpp=args.mpp,
        batch_size=args.batch_size, num_workers=args.num_workers,
        backend=args.backend, score_thr=args.score_thr, merge=args.merge,
        class_aware=not args.class_agnostic, iou_thr=args.iou_thr,
        ios_thr=args.ios_thr, centre_dist_um=args.centre_dist_um,
        edge_margin=args.edge_margin, use_mask=not args.no_mask,
        min_tissue=args.min_tissue, top_k=args.top_k,
        topk_mean_k=args.topk_mean_k,
        abnormal_classes=args.abnormal_classes,
        cell_feature_size=args.cell_feature_size,
        mil_config=args.mil_config, mil_checkpoint=args.mil_checkpoint,
        thresholds=args.thresholds, gallery_top_n=args.gallery_top_n,
        write_parquet=not args.no_parquet, progress=not args.no_progress,
        optimize=not args.no_optimize, precision=args.precision)
    inferencer = SlideInferencer(args.config, args.checkpoint, device=device,
                                 settings=settings)
    os.makedirs(args.out_dir, exist_ok=True)
    summary = []
    t0 = time.perf_counter()
    for i, slide in enumerate(slides):
        try:
            report = inferencer.run(slide, args.out_dir,
                                    overwrite=args.overwrite)
        except Exception as e:  # noqa: BLE001 - last resort: go on
            if world > 1:
                raise  # the other ranks cannot go on alone
            report = dict(slide=slide.stem, path=str(slide),
                          status='failed',
                          error=f'{slide}: {type(e).__name__}: {e}')
        summary.append(summary_row(slide, report))
        if rank == 0:
            print(f'[{i + 1}/{len(slides)}] {slide.name}: '
                  f'{describe(report)}', flush=True)
            for w in report.get('warnings') or []:
                if report['status'] == 'done':
                    print(f'    warning: {w}', flush=True)
    failed = [r for r in summary if r['status'] == 'failed']
    if rank == 0:
        path = write_summary(args.out_dir, summary, world,
                             time.perf_counter() - t0)
        print(f'{len(summary) - len(failed)} slides done or skipped, '
              f'{len(failed)} failed; summary: {path}')
        for r in failed:
            print(f'FAILED {r["path"]}: {r["error"]}', file=sys.stderr)
    shutdown_dist()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
