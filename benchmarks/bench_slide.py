"""Slide screening pipeline overhead: end to end vs the detector alone.

Usage:
    python benchmarks/bench_slide.py [--slide PATH] [--config CFG]
        [--checkpoint CKPT] [--tile-size 512] [--overlap 128]
        [--batch-size 4] [--workers 0 1 2] [--threads N] [--max-tiles 120]

Side by side in one process, on the same tiles of one slide (default: the
real 4096x2816 ThinPrep field ``../shared/data/tct_field``, read through the
plain-image reader; pass a WSI to use another reader):

- ``detector alone``: the tiles are read, run through the test pipeline and
  collated *before* timing; then only ``model.test_step`` over the batches is
  timed (the best the pipeline could do);
- ``end to end``: :class:`cervdet.apis.SlideInferencer` over the same tiles
  (tissue mask, tile plan, DataLoader with ``--workers`` reader processes,
  test pipeline, ``test_step``, edge filtering, coordinates, resume chunks),
  timed from the first batch request to the last result; merge and outputs
  are timed separately.

Printed per number of workers: tiles/s of both and their ratio, which is
the detector busy share (detector-alone time / end-to-end loop time, the
same number; target >= 0.9).
The detector is the shipped CPU RetinaNet (``--config``) with random weights
unless ``--checkpoint`` is given (speed does not depend on the weights; the
score threshold is raised so random weights give a realistic number of
boxes). ``--max-tiles`` limits the tiles (the slide is cropped to fit).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CFG = osp.join(
    ROOT, 'configs', 'retinanet',
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py')
DEFAULT_SLIDE = osp.join(ROOT, '..', 'shared', 'data', 'tct_field',
                         'field_4096x2816.jpg')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--slide', default=DEFAULT_SLIDE)
    p.add_argument('--config', default=DEFAULT_CFG)
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--tile-size', type=int, default=512)
    p.add_argument('--overlap', type=int, default=128)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (default: torch default)')
    p.add_argument('--max-tiles', type=int, default=120)
    p.add_argument('--score-thr', type=float, default=0.3)
    return p.parse_args()


def main():
    args = parse_args()
    import cv2
    import numpy as np
    import torch
    from mmengine.config import Config

    import cervdet  # noqa: F401
    from cervdet.apis.slide import SlideInferencer, TilePipelineDataset, collate_tiles
    from cervdet.datasets.slide_readers import open_slide
    from cervdet.datasets.slide_tiles import SlideTileDataset, plan_tiles, tissue_mask

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'machine: {os.cpu_count()} cores, torch threads '
          f'{torch.get_num_threads()}, load average {os.getloadavg()}')
    tmp = tempfile.mkdtemp(prefix='bench_slide_')
    cfg = Config.fromfile(args.config)
    if args.checkpoint is None:
        from cervdet.testing import random_scoring_detector
        model = random_scoring_detector(cfg)
    else:
        model = None

    # the slide, cropped to about --max-tiles tiles
    slide = args.slide
    with open_slide(slide) as reader:
        w, h = reader.dimensions
        stride = args.tile_size - args.overlap
        cols = max(1, (w - args.overlap) // stride)
        rows = max(1, (h - args.overlap) // stride)
        if cols * rows > args.max_tiles and reader.level_count == 1:
            rows = max(1, min(rows, args.max_tiles // cols))
            cols = max(1, min(cols, args.max_tiles // rows))
            img = reader.read_region(0, 0, cols * stride + args.overlap,
                                     rows * stride + args.overlap)
            slide = osp.join(tmp, 'slide_crop.png')
            cv2.imwrite(slide, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    inf = SlideInferencer(cfg, args.checkpoint, model=model,
                          tile_size=args.tile_size, overlap=args.overlap,
                          batch_size=args.batch_size, num_workers=0,
                          score_thr=args.score_thr, mpp=0.5,
                          write_parquet=False)
    with open_slide(slide) as reader:
        mask, mask_ds = tissue_mask(reader, max_side=1024)
        plan = plan_tiles(reader.dimensions, args.tile_size, args.overlap,
                          1.0, mask=mask, mask_downsample=mask_ds,
                          min_tissue=inf.settings.read.min_tissue)
        dims = reader.dimensions
    keep = np.flatnonzero(plan.keep)
    print(f'slide {slide}: {dims[0]}x{dims[1]} px, {len(plan.keep)} tiles, '
          f'{len(keep)} with tissue, tile {args.tile_size} overlap '
          f'{args.overlap}, batch {args.batch_size}')

    # detector alone on pre-loaded batches
    base = SlideTileDataset(slide, plan.origins[keep], plan.tile_size, 1.0)
    ds = TilePipelineDataset(base, inf.pipeline, keep)
    items = [ds[i] for i in range(len(ds))]
    batches = [collate_tiles(items[i:i + args.batch_size])
               for i in range(0, len(items), args.batch_size)]
    with torch.no_grad():
        inf.model.test_step(dict(inputs=batches[0]['inputs'],
                                 data_samples=batches[0]['data_samples']))
        t0 = time.perf_counter()
        for b in batches:
            inf.model.test_step(dict(inputs=b['inputs'],
                                     data_samples=b['data_samples']))
        t_det = time.perf_counter() - t0
    print(f'detector alone: {len(keep) / t_det:.2f} tiles/s '
          f'({t_det:.1f} s for {len(keep)} tiles)')
    print(f'{"workers":>7} | {"e2e tiles/s":>11} | {"det tiles/s":>11} | '
          f'{"busy":>5} | {"mask+plan s":>11} | '
          f'{"merge s":>7} | {"outputs s":>9}')
    for nw in args.workers:
        inf.settings.detect.num_workers = nw
        rep = inf.run(slide, osp.join(tmp, f'out_w{nw}'))
        assert rep['status'] == 'done', rep
        tm = rep['timing']
        e2e = rep['tiles']['read'] / tm['detect_loop_s']
        print(f'{nw:>7} | {e2e:>11.2f} | {len(keep) / t_det:>11.2f} | '
              f'{t_det / tm["detect_loop_s"]:>5.2f} | '
              f'{tm["plan_and_mask_s"]:>11.2f} | {tm["merge_s"]:>7.2f} | '
              f'{tm["outputs_s"]:>9.2f}', flush=True)
    print(f'load average after: {os.getloadavg()}; outputs in {tmp}')


if __name__ == '__main__':
    main()
