"""Slide reading benchmark: tiles/s per backend and peak memory vs slide size.

Writes synthetic pyramidal TIFFs (JPEG, downsamples 1/4/16, 0.25 um/px):
blank glass with a fixed number of tissue patches made of tiled **real**
CRIC cell crops (``../shared/data/cric_crops_bethesda``), then prints

1. ``read_region`` 512x512 tiles/s on tissue for openslide, tiffslide and
   tifffile, and through ``SlideTileDataset`` + DataLoader with 0/1/2
   workers (tifffile... the auto backend);
2. the peak RSS of a fresh process that opens a slide, computes the tissue
   mask, plans the tiles and reads every kept tile (per reader), and of the
   whole ``SlideInferencer`` run (``e2e``: the shipped CPU RetinaNet with
   random weights, tiles read in-process), for each slide size; the peak
   is reset after the imports and the model build (``/proc/self/clear_refs``)
   so ``peak - base`` is what the slide costs (the tissue is the same, so
   it must not grow with the size).

Example::

    python benchmarks/bench_slide_readers.py --sizes 10000 20000 40000
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get('CERVDET_SHARED_DATA', ROOT / '..' / 'shared' /
                           'data')).resolve()


def tissue_patch(side: int = 2048, seed: int = 0) -> np.ndarray:
    """RGB patch of real 100x100 CRIC crops on a grid (some gaps)."""
    files = sorted((DATA / 'cric_crops_bethesda').glob('*/*.png'))
    if not files:
        raise FileNotFoundError(f'no CRIC crops under {DATA}')
    rng = np.random.default_rng(seed)
    patch = np.full((side, side, 3), 245, np.uint8)
    for y in range(0, side - 99, 100):
        for x in range(0, side - 99, 100):
            if rng.random() < 0.2:
                continue
            crop = cv2.imread(str(files[rng.integers(len(files))]))
            patch[y:y + 100, x:x + 100] = cv2.resize(crop, (100, 100))[
                ..., ::-1]
    return patch


def write_slide(path: Path, size: int, patch: np.ndarray) -> float:
    """A size x size slide, 4 tissue patches; returns the write time (s)."""
    from cervdet.testing.pyramidal_tiff import write_pyramidal_tiff
    ps = patch.shape[0]
    spots = [(int(size * fy), int(size * fx)) for fy, fx in
             ((0.1, 0.1), (0.1, 0.6), (0.6, 0.2), (0.55, 0.55))]
    spots = [(min(y, size - ps), min(x, size - ps)) for y, x in spots]

    def tile_fn(y, x, h, w):
        out = None
        for py, px in spots:
            y0, x0 = max(y, py), max(x, px)
            y1, x1 = min(y + h, py + ps), min(x + w, px + ps)
            if y1 > y0 and x1 > x0:
                if out is None:
                    out = np.full((h, w, 3), 245, np.uint8)
                out[y0 - y:y1 - y, x0 - x:x1 - x] = \
                    patch[y0 - py:y1 - py, x0 - px:x1 - px]
        return out  # None: blank glass

    t0 = time.time()
    write_pyramidal_tiff(path, size, size, tile_fn, mpp=0.25,
                         downsamples=(1, 4, 16), tile=256,
                         compression='jpeg', force_overwrite=True)
    return time.time() - t0


def bench_backends(path: Path, n: int) -> dict:
    from torch.utils.data import DataLoader

    from cervdet.datasets.slide_readers import open_slide
    from cervdet.datasets.slide_tiles import (
        SlideTileDataset,
        collate_tiles,
        plan_tiles,
        tissue_mask,
    )
    res = {}
    with open_slide(path, backend='tifffile') as r:
        mask, mds = tissue_mask(r)
        plan = plan_tiles(r.dimensions, 512, 0, 1., mask, mds, 0.05)
    origins = plan.origins[plan.keep][:n]
    for backend in ('openslide', 'tiffslide', 'tifffile'):
        with open_slide(path, backend=backend) as r:
            r.read_region(0, 0, 8, 8)
            t0 = time.time()
            for x, y in origins:
                r.read_region(int(x), int(y), 512, 512, 0)
            res[f'read_region {backend}'] = len(origins) / (time.time() - t0)
    for nw in (0, 1, 2):
        ds = SlideTileDataset(path, origins, 512, 1.)
        loader = DataLoader(ds, batch_size=4, num_workers=nw,
                            collate_fn=collate_tiles)
        t0 = time.time()
        k = sum(len(b['imgs']) for b in loader)
        res[f'SlideTileDataset auto, {nw} workers'] = k / (time.time() - t0)
    res['tiles'] = int(len(origins))
    return res


def _rss_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024.
    raise RuntimeError(f'{field} not in /proc/self/status')


def _reset_peak() -> None:
    """Reset the peak RSS (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def peak_memory_child(path: str, backend: str) -> None:
    """Run in a fresh process: mask + plan + read all kept tiles (a reader
    backend), or ``e2e``: the whole :class:`SlideInferencer` run (tiles
    read in-process, the CPU RetinaNet with random weights, merge, outputs).

    The peak RSS is reset after the imports (and the model build), so the
    printed ``peak - base`` is what the slide itself costs.
    """
    from cervdet.datasets.slide_readers import open_slide
    from cervdet.datasets.slide_tiles import SlideTileDataset, plan_tiles, tissue_mask
    inf = None
    if backend == 'e2e':
        from mmengine.config import Config

        from cervdet.apis import SlideInferencer
        from cervdet.testing import random_scoring_detector
        cfg = Config.fromfile(str(ROOT / 'configs' / 'retinanet' / (
            'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py')))
        model = random_scoring_detector(cfg)
        inf = SlideInferencer(cfg, model=model, tile_size=512, overlap=64,
                              batch_size=4, num_workers=0, score_thr=0.3)
    _reset_peak()
    base = _rss_mb('VmRSS')
    t0 = time.time()
    if inf is not None:
        out = tempfile.mkdtemp(prefix='bench_mem_')
        rep = inf.run(path, out)
        grid, kept = rep['tiles']['total'], rep['tiles']['read']
    else:
        with open_slide(path, backend=backend) as r:
            mask, mds = tissue_mask(r, max_side=1024)
            plan = plan_tiles(r.dimensions, 512, 64, 1., mask, mds, 0.05)
        ds = SlideTileDataset(path, plan.origins[plan.keep], 512, 1.,
                              backend=backend)
        for i in range(len(ds)):
            ds[i]
        grid, kept = len(plan), int(plan.keep.sum())
    peak = _rss_mb('VmHWM')
    print(json.dumps(dict(base_mb=base, peak_mb=peak, grid=grid, kept=kept,
                          seconds=time.time() - t0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--work-dir', help='where the slides are written '
                    '(default: a temporary folder, deleted)')
    ap.add_argument('--sizes', type=int, nargs='+',
                    default=[10000, 20000, 40000])
    ap.add_argument('--reads', type=int, default=64,
                    help='512 px tiles read per backend')
    ap.add_argument('--backends', nargs='+',
                    default=['tifffile', 'openslide', 'e2e'],
                    help='readers whose peak memory is measured; e2e = the '
                    'whole SlideInferencer run (CPU RetinaNet)')
    args = ap.parse_args()
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        return
    print(f'cores: {os.cpu_count()}, OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS")}')
    tmp = None
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    patch = tissue_patch()
    slides = {}
    for size in args.sizes:
        p = work / f'synthetic_{size}.tif'
        t = write_slide(p, size, patch)
        slides[size] = p
        print(f'wrote {size}x{size} JPEG pyramid in {t:.1f} s '
              f'({p.stat().st_size / 2**20:.1f} MiB)', flush=True)
    first = slides[args.sizes[0]]
    res = bench_backends(first, args.reads)
    print(f'\n512x512 tissue tiles/s on {first.name} ({res.pop("tiles")} '
          'tiles):')
    for k, v in res.items():
        print(f'  {k:36s} {v:7.1f}')
    print('\npeak RSS of mask + plan + reading all kept tiles (e2e: the '
          'whole slide_infer run) in a fresh process; base = RSS after the '
          'imports and model build, peak reset there:')
    for backend in args.backends:
        for size, p in slides.items():
            out = subprocess.run(
                [sys.executable, __file__, '--child', str(p), backend],
                capture_output=True, text=True, check=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT)))
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f'  {backend:9s} {size:6d} px: grid {r["grid"]:5d} kept '
                  f'{r["kept"]:4d}  base {r["base_mb"]:6.0f} MiB  peak '
                  f'{r["peak_mb"]:6.0f} MiB  (+{r["peak_mb"] - r["base_mb"]:5.0f}'
                  f' MiB)  {r["seconds"]:5.1f} s',
                  flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--child':
        peak_memory_child(sys.argv[2], sys.argv[3])
    else:
        main()
