"""Large-image inference: ``tools/slide_infer.py`` (SlideInferencer) vs SAHI.

Usage::

    python benchmarks/bench_vs_sahi.py --checkpoint CKPT [--config CFG]
        [--field PATH] [--border-cells] [--synthetic-size 20000]
        [--repeats 3] [--tools sahi cervdet cervdet-noopt cervdet-bf16]
        [--tile-size 512] [--overlap 64] [--score-thr 0.3] [--threads 1]
        [--json OUT.json] [--smoke] [--in-process]

On a machine shared with other jobs use ``--threads 1`` and read the CPU
seconds (docs/benchmarks.md explains why). Results: docs/benchmarks.md.

What a new user would compare: the same detector checkpoint, tile size,
overlap and score threshold, through

- ``sahi``: SAHI's ``get_sliced_prediction`` with its ``mmdet`` model type
  (``AutoDetectionModel.from_pretrained(model_type='mmdet', ...)``), its
  defaults otherwise (standard full-image prediction on, ``GREEDYNMM`` /
  ``IOS`` 0.5 merging, batch 1); the image is given to it as one decoded
  array (it has no slide reader);
- ``cervdet``: :class:`cervdet.apis.SlideInferencer` as
  ``tools/slide_infer.py`` runs it (``--no-mask`` on the field, tissue
  mask on the synthetic slide; gallery, overview, cell features and report
  written; no parquet);
  ``cervdet-noopt`` the same with ``--no-optimize`` (the detector as built),
  ``cervdet-bf16`` with ``--precision bf16``, ``cervdet-agnostic`` with
  ``--class-agnostic`` (boxes of different classes on one cell merged).

``tiles``: SAHI's slices (without its extra full-image prediction), or the
tiles cervdet read (after the tissue mask).

Each run is a fresh process (so the peak memory is the run's own):
``model load`` is not timed (nor a one-tile warm-up run); ``wall_s`` is
image decode + slicing + detection + merging (+ cervdet's outputs);
``cpu_s`` the CPU seconds of the process and its reaped children over the
same span (on a machine loaded by other jobs, CPU time measures the work,
wall time also the waiting); ``peak_mb`` the highest memory of the process
tree (:class:`PeakMemory`), sampled every 50 ms after the model is loaded.
Runs alternate (sahi, cervdet, sahi, ...) ``--repeats`` times; the ratio
is computed per pair, so a load change of the machine between pairs does
not bias it. Then on the last outputs of each:

- ``dup_pairs``: pairs of output boxes with IoU > 0.5 or IoS > 0.7 (any
  class; ``dup_pairs_cls``: same class) - a cell reported twice, or a cut
  half of a cell beside the whole one;
- ``dup_edge`` / ``dup_edge_cls``: those of the pairs that **straddle a tile
  edge**: no single tile (of the common grid, :func:`grid_positions`; SAHI's
  slices are the same starts) contains both boxes, so the pair cannot come
  from one tile's detections - it is what merging the tiles left (pairs
  inside one tile are the detector's own NMS's business);
- ``border_cells`` (``--border-cells``, the field only): real CRIC cells
  pasted centred on the interior tile edges; ``border_multi`` counts those
  covered by more than one output box (IoS > 0.5 with the cell),
  ``border_whole`` those found whole (a box at IoU >= 0.5);
- ``agree``: boxes of the two outputs matched one to one at IoU >= 0.5 (any
  class), as ``2 * matched / (n_sahi + n_cervdet)``.

The synthetic slide is a pyramidal JPEG TIFF (0.25 um/px, downsamples 1, 4,
16) of blank glass with four 2048 px patches of real CRIC crops (as in
``bench_slide_readers.py``): what a screening slide looks like to a tiler,
not evidence of detection quality.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get('CERVDET_SHARED_DATA', ROOT / '..' / 'shared' /
                           'data')).resolve()
DEFAULT_CFG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
DEFAULT_FIELD = DATA / 'tct_field' / 'field_4096x2816.jpg'
#: Columns of the printed / returned table (one row per input and tool).
TABLE_COLUMNS = ('input', 'tool', 'tiles', 'wall_s', 'cpu_s',
                 'speedup_wall', 'speedup_wall_std', 'speedup_cpu',
                 'speedup_cpu_std', 'peak_mb', 'boxes', 'dup_pairs',
                 'dup_pairs_cls', 'dup_edge', 'dup_edge_cls', 'border_multi',
                 'border_whole', 'agree', 'load_avg')
#: Tools compared: SAHI, SlideInferencer (default float32 path), the same
#: with ``--no-optimize`` (the detector as built) and with ``--precision
#: bf16`` and with ``--class-agnostic``.
TOOLS = ('sahi', 'cervdet', 'cervdet-noopt', 'cervdet-bf16',
         'cervdet-agnostic')


# ----------------------------------------------------------------------------
# Memory of a process tree
# ----------------------------------------------------------------------------
def _tree_pids(pid: int) -> List[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f'/proc/{p}/task'):
                with open(f'/proc/{p}/task/{t}/children') as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


_PAGE_MB = os.sysconf('SC_PAGE_SIZE') / 2**20


def _statm_mb(pid: int):
    """Resident and resident-shared (file-backed) MiB of ``pid``."""
    try:
        with open(f'/proc/{pid}/statm') as f:
            _, res, shared = (int(v) for v in f.read().split()[:3])
        return res * _PAGE_MB, shared * _PAGE_MB
    except (OSError, ValueError):
        return 0., 0.


class PeakMemory:
    """Highest memory of this process and its children (MiB), sampled every
    ``interval`` s in a thread between ``start()`` and ``stop()``: this
    process's RSS plus each child's RSS without its file-backed shared pages
    (libraries mapped by all; ``/proc/<pid>/statm``, cheap to read)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0.
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        total = 0.
        for p in _tree_pids(me):
            res, shared = _statm_mb(p)
            total += res if p == me else res - shared
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def start(self) -> 'PeakMemory':
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


# ----------------------------------------------------------------------------
# Box statistics
# ----------------------------------------------------------------------------
def pair_overlaps(a: np.ndarray, b: np.ndarray):
    """IoU and IoS (intersection over the smaller box) of every pair.

    Args:
        a (np.ndarray): float ``[N, 4]`` x1, y1, x2, y2.
        b (np.ndarray): float ``[M, 4]``.

    Returns:
        tuple[np.ndarray, np.ndarray]: float64 ``[N, M]`` IoU and IoS.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - \
        np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - \
        np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    small = np.minimum(area_a[:, None], area_b[None, :])
    return inter / np.maximum(union, 1e-9), inter / np.maximum(small, 1e-9)


def duplicate_index_pairs(bboxes: np.ndarray,
                          labels: Optional[np.ndarray] = None,
                          iou_thr: float = 0.5, ios_thr: float = 0.7,
                          chunk: int = 2048) -> np.ndarray:
    """Pairs ``i < j`` of boxes with IoU > ``iou_thr`` or IoS > ``ios_thr``
    (of the same label when ``labels`` is given); chunked over rows.

    Returns:
        np.ndarray: int64 ``[P, 2]`` indices ``(i, j)``.
    """
    b = np.asarray(bboxes, np.float64).reshape(-1, 4)
    n, out = len(b), [np.zeros((0, 2), np.int64)]
    for s in range(0, n, chunk):
        iou, ios = pair_overlaps(b[s:s + chunk], b)
        hit = (iou > iou_thr) | (ios > ios_thr)
        hit &= np.arange(n)[None, :] > np.arange(s, min(n, s + chunk))[:, None]
        if labels is not None:
            lab = np.asarray(labels)
            hit &= lab[s:s + chunk, None] == lab[None, :]
        i, j = np.nonzero(hit)
        out.append(np.stack([i + s, j], 1).astype(np.int64))
    return np.concatenate(out)


def duplicate_pairs(bboxes: np.ndarray, labels: Optional[np.ndarray] = None,
                    iou_thr: float = 0.5, ios_thr: float = 0.7,
                    chunk: int = 2048) -> int:
    """Number of :func:`duplicate_index_pairs`."""
    return len(duplicate_index_pairs(bboxes, labels, iou_thr, ios_thr, chunk))


def straddling_pairs(bboxes: np.ndarray, pairs: np.ndarray,
                     xs: np.ndarray, ys: np.ndarray, tile: int) -> int:
    """Pairs of boxes that no single tile contains both of.

    Args:
        bboxes (np.ndarray): float ``[N, 4]`` x1, y1, x2, y2 (level 0).
        pairs (np.ndarray): int ``[P, 2]`` indices into ``bboxes``.
        xs, ys (np.ndarray): tile starts along x and y (the grid is their
            product).
        tile (int): tile side (px).

    Returns:
        int: pairs whose union box fits in no tile ``[x, x + tile] x [y, y +
        tile]``: the two boxes came from different tiles (straddle an edge).
    """
    b = np.asarray(bboxes, np.float64).reshape(-1, 4)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if not len(pairs):
        return 0
    bi, bj = b[pairs[:, 0]], b[pairs[:, 1]]
    lo = np.minimum(bi[:, :2], bj[:, :2])  # union box [P, 2] (x, y)
    hi = np.maximum(bi[:, 2:], bj[:, 2:])
    fits = []
    for axis, starts in ((0, np.asarray(xs)), (1, np.asarray(ys))):
        st = starts.astype(np.float64)[None, :]
        fits.append(((st <= lo[:, axis, None]) &
                     (st + tile >= hi[:, axis, None])).any(1))
    return int((~(fits[0] & fits[1])).sum())


def image_size(path: Path):
    """``(height, width)`` of level 0 of an image or TIFF, from its header."""
    p = str(path)
    if p.lower().endswith(('.tif', '.tiff')):
        import tifffile
        with tifffile.TiffFile(p) as t:
            return tuple(t.pages[0].shape[:2])
    from PIL import Image
    with Image.open(p) as im:
        return im.height, im.width


def match_count(a: np.ndarray, b: np.ndarray, iou_thr: float = 0.5) -> int:
    """Boxes of ``a`` and ``b`` matched one to one at IoU >= ``iou_thr``
    (greedy by decreasing IoU)."""
    if len(a) == 0 or len(b) == 0:
        return 0
    iou, _ = pair_overlaps(a, b)
    i, j = np.nonzero(iou >= iou_thr)
    order = np.argsort(-iou[i, j], kind='stable')
    used_a, used_b, n = set(), set(), 0
    for k in order:  # pairs above the threshold only (few per box)
        if i[k] not in used_a and j[k] not in used_b:
            used_a.add(i[k])
            used_b.add(j[k])
            n += 1
    return n


# ----------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------
def border_cell_field(field: Path, out: Path, tile: int, overlap: int,
                      seed: int = 0) -> np.ndarray:
    """Copy of ``field`` with real CRIC cells pasted centred on interior tile
    edges (both tools' grid: starts ``k * (tile - overlap)``, last shifted
    inside); returns the pasted cells' boxes ``float32[K, 4]``."""
    import cv2

    from cervdet.datasets.slide_tiles import grid_positions
    img = cv2.imread(str(field), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read the field {field}')
    h, w = img.shape[:2]
    files = sorted((DATA / 'cric_crops_bethesda').glob('*/*.png'))
    if not files:
        raise FileNotFoundError(f'no CRIC crops under {DATA}/'
                                'cric_crops_bethesda')
    rng = np.random.default_rng(seed)
    xs = grid_positions(w, tile, tile - overlap)
    ys = grid_positions(h, tile, tile - overlap)
    boxes = []
    side = 72
    # a cell on each interior right edge (x = start + tile) of every row
    for x in xs[:-1] + tile:
        for y in ys[:-1] + tile // 2:
            crop = cv2.resize(cv2.imread(str(files[rng.integers(len(files))])),
                              (side, side))
            x0, y0 = int(x - side // 2), int(y - side // 2)
            if x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h:
                continue
            img[y0:y0 + side, x0:x0 + side] = crop
            boxes.append([x0, y0, x0 + side, y0 + side])
    cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def synthetic_slide(path: Path, size: int) -> Path:
    """The pyramidal synthetic slide of ``bench_slide_readers.py``."""
    from benchmarks.bench_slide_readers import tissue_patch, write_slide
    if not path.is_file():
        write_slide(path, size, tissue_patch(min(2048, size // 2)))
    return path


# ----------------------------------------------------------------------------
# One run (in a fresh process)
# ----------------------------------------------------------------------------
def _load_rgb(path: str) -> np.ndarray:
    """The whole level 0 as RGB (what a SAHI user passes)."""
    if path.lower().endswith(('.tif', '.tiff')):
        import tifffile
        return tifffile.imread(path, level=0)[..., :3]
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _cpu_s() -> float:
    """CPU seconds of this process and its reaped children."""
    import resource
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_sahi(args) -> dict:
    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction

    import cervdet  # noqa: F401  (registers the config's cervdet modules)
    model = AutoDetectionModel.from_pretrained(
        model_type='mmdet', model_path=args.checkpoint,
        config_path=args.config, confidence_threshold=args.score_thr,
        device='cpu')
    ratio = args.overlap / args.tile_size
    get_sliced_prediction(  # warm-up on one tile (one-off kernel set-up)
        np.full((args.tile_size, args.tile_size, 3), 200, np.uint8), model,
        slice_height=args.tile_size, slice_width=args.tile_size,
        overlap_height_ratio=ratio, overlap_width_ratio=ratio, verbose=0)
    mem = PeakMemory().start()
    c0 = _cpu_s()
    t0 = time.perf_counter()
    img = _load_rgb(args.input)
    res = get_sliced_prediction(
        img, model, slice_height=args.tile_size, slice_width=args.tile_size,
        overlap_height_ratio=ratio, overlap_width_ratio=ratio, verbose=0)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    peak = mem.stop()
    from sahi.slicing import get_slice_bboxes
    n_slices = len(get_slice_bboxes(
        img.shape[0], img.shape[1], slice_height=args.tile_size,
        slice_width=args.tile_size, overlap_height_ratio=ratio,
        overlap_width_ratio=ratio))
    preds = res.object_prediction_list
    boxes = np.asarray([p.bbox.to_xyxy() for p in preds],
                       np.float32).reshape(-1, 4)
    return dict(wall_s=wall, cpu_s=cpu, peak_mb=peak, bboxes=boxes.tolist(),
                scores=[float(p.score.value) for p in preds],
                labels=[int(p.category.id) for p in preds],
                tiles=n_slices, durations=res.durations_in_seconds)


def run_cervdet(args) -> dict:
    from cervdet.apis import SlideInferencer
    is_tiff = args.input.lower().endswith(('.tif', '.tiff'))
    inf = SlideInferencer(
        args.config, args.checkpoint, device='cpu',
        optimize=args.tool != 'cervdet-noopt',
        precision='bf16' if args.tool == 'cervdet-bf16' else 'fp32',
        tile_size=args.tile_size, overlap=args.overlap,
        batch_size=args.batch_size, num_workers=args.num_workers,
        score_thr=args.score_thr, use_mask=is_tiff, write_parquet=False,
        class_aware=args.tool != 'cervdet-agnostic',
        progress=False)
    out = tempfile.mkdtemp(prefix='bench_vs_sahi_')
    with tempfile.TemporaryDirectory() as warm:  # warm-up on one tile
        import cv2
        p = osp.join(warm, 'warm.png')
        cv2.imwrite(p, np.full((args.tile_size, args.tile_size, 3), 200,
                               np.uint8))
        inf.run(p, warm, overwrite=True)
    mem = PeakMemory().start()
    c0 = _cpu_s()
    t0 = time.perf_counter()
    rep = inf.run(args.input, out, overwrite=True)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    peak = mem.stop()
    if rep['status'] != 'done':
        raise RuntimeError(f'SlideInferencer failed: {rep}')
    import csv
    boxes, scores, labels = [], [], []
    with open(osp.join(out, Path(args.input).stem, 'detections.csv')) as f:
        for row in csv.DictReader(f):
            boxes.append([float(row[k]) for k in ('x1', 'y1', 'x2', 'y2')])
            scores.append(float(row['score']))
            labels.append(int(row['label']))
    return dict(wall_s=wall, cpu_s=cpu, peak_mb=peak, bboxes=boxes,
                scores=scores,
                labels=labels, tiles=rep['tiles']['read'],
                durations=rep['timing'])


def child_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument('tool', choices=TOOLS)
    p.add_argument('input')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--tile-size', type=int, default=512)
    p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    return p.parse_args(argv)


def run_one(args: argparse.Namespace) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    res = (run_sahi if args.tool == 'sahi' else run_cervdet)(args)
    res['tool'] = args.tool
    return res


def run_child(tool: str, inp: Path, args) -> dict:
    argv = [tool, str(inp), str(args.config), str(args.checkpoint),
            '--tile-size', str(args.tile_size), '--overlap',
            str(args.overlap), '--score-thr', str(args.score_thr),
            '--batch-size', str(args.batch_size), '--num-workers',
            str(args.num_workers), '--threads', str(args.threads)]
    if getattr(args, 'in_process', False):  # tests: no fresh process
        res = run_one(child_args(argv))
        res['load_avg'] = os.getloadavg()[0]
        return res
    cmd = [sys.executable, str(Path(__file__).resolve()), '--child'] + argv
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith('RESULT ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'{tool} on {inp} failed ({proc.returncode}):\n'
                           f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    res = json.loads(lines[-1][len('RESULT '):])
    res['load_avg'] = os.getloadavg()[0]
    return res


# ----------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------
def compare(inputs: Dict[str, Path], args,
            border_boxes: Optional[Dict[str, np.ndarray]] = None
            ) -> List[dict]:
    """Alternate the tools ``args.repeats`` times per input; return one
    table row per input and tool (keys ``TABLE_COLUMNS``). Speed-ups are
    SAHI's time over the tool's, per round (mean and std over rounds)."""
    rows = []
    tools = ['sahi'] + [t for t in args.tools if t != 'sahi']
    for name, inp in inputs.items():
        runs = {t: [] for t in tools}
        for _ in range(args.repeats):
            for tool in tools:
                runs[tool].append(run_child(tool, inp, args))
                r = runs[tool][-1]
                print(f'  {name:12s} {tool:13s} wall {r["wall_s"]:7.2f} s '
                      f'cpu {r["cpu_s"]:7.2f} s {r["peak_mb"]:7.0f} MiB '
                      f'{len(r["bboxes"]):5d} boxes load {r["load_avg"]:.2f}',
                      flush=True)
        last = {t: runs[t][-1] for t in tools}
        boxes = {t: np.asarray(last[t]['bboxes'], np.float64).reshape(-1, 4)
                 for t in tools}
        from cervdet.datasets.slide_tiles import grid_positions
        h, w = image_size(inp)
        step = args.tile_size - args.overlap
        xs = grid_positions(w, args.tile_size, step)
        ys = grid_positions(h, args.tile_size, step)
        for tool in tools:
            sp = {k: [s[k] / max(r[k], 1e-9) for s, r in
                      zip(runs['sahi'], runs[tool])]
                  for k in ('wall_s', 'cpu_s')}
            multi = whole = None
            if border_boxes and name in border_boxes:
                iou, ios = pair_overlaps(border_boxes[name], boxes[tool])
                multi = int(((ios > 0.5).sum(1) > 1).sum())
                whole = int((iou >= 0.5).any(1).sum())
            labels = np.asarray(last[tool]['labels'])
            pairs = duplicate_index_pairs(boxes[tool])
            pairs_cls = pairs[labels[pairs[:, 0]] == labels[pairs[:, 1]]]
            n = len(boxes[tool]) + len(boxes['sahi'])
            rows.append(dict(
                input=name, tool=tool, tiles=last[tool]['tiles'],
                wall_s=statistics.mean(r['wall_s'] for r in runs[tool]),
                cpu_s=statistics.mean(r['cpu_s'] for r in runs[tool]),
                speedup_wall=statistics.mean(sp['wall_s']),
                speedup_wall_std=statistics.pstdev(sp['wall_s']),
                speedup_cpu=statistics.mean(sp['cpu_s']),
                speedup_cpu_std=statistics.pstdev(sp['cpu_s']),
                peak_mb=max(r['peak_mb'] for r in runs[tool]),
                boxes=len(boxes[tool]),
                dup_pairs=len(pairs), dup_pairs_cls=len(pairs_cls),
                dup_edge=straddling_pairs(boxes[tool], pairs, xs, ys,
                                          args.tile_size),
                dup_edge_cls=straddling_pairs(boxes[tool], pairs_cls, xs, ys,
                                              args.tile_size),
                border_multi=multi, border_whole=whole,
                agree=2 * match_count(boxes['sahi'], boxes[tool]) / n
                if n else None,
                load_avg=statistics.mean(r['load_avg'] for r in runs[tool])))
    return rows


def format_table(rows: List[dict]) -> str:
    """Markdown table of ``rows`` (columns ``TABLE_COLUMNS``)."""
    def fmt(v):
        if v is None:
            return '-'
        if isinstance(v, float):
            return f'{v:.2f}'
        return str(v)
    lines = ['| ' + ' | '.join(TABLE_COLUMNS) + ' |',
             '|' + '---|' * len(TABLE_COLUMNS)]
    for r in rows:
        lines.append('| ' + ' | '.join(fmt(r[c]) for c in TABLE_COLUMNS) +
                     ' |')
    return '\n'.join(lines)


def random_checkpoint(config: Path, out: Path, cls_bias: float = -4.) -> Path:
    """A seeded random-weight checkpoint of ``config`` with class names
    (speed rows only: its boxes mean nothing)."""
    import torch
    from mmengine.config import Config

    from cervdet.testing import random_scoring_detector
    model = random_scoring_detector(Config.fromfile(str(config)),
                                    cls_bias=cls_bias)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), out)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', type=Path, default=DEFAULT_CFG)
    p.add_argument('--checkpoint', type=Path, default=None,
                   help='detector checkpoint (default: random weights, '
                   'speed rows only)')
    p.add_argument('--field', type=Path, default=DEFAULT_FIELD)
    p.add_argument('--border-cells', action='store_true',
                   help='also the field with CRIC cells pasted on the tile '
                   'edges')
    p.add_argument('--synthetic-size', type=int, default=0,
                   help='also a synthetic pyramidal slide of this side '
                   '(e.g. 20000; 0: none)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--tools', nargs='+', default=list(TOOLS[:4]),
                   choices=TOOLS)
    p.add_argument('--tile-size', type=int, default=512)
    p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--work-dir', type=Path, default=None)
    p.add_argument('--json', type=Path, default=None,
                   help='write the rows here')
    p.add_argument('--in-process', action='store_true',
                   help='run the tools in this process (tests; peak memory '
                   'then includes both)')
    p.add_argument('--smoke', action='store_true',
                   help='tiny inputs (a 600x400 crop of the field), one '
                   'repeat, 256 px tiles: checks the script in seconds')
    return p.parse_args(argv)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    try:
        import sahi  # noqa: F401
    except ImportError as e:
        raise SystemExit('SAHI is not installed: pip install -r '
                         'requirements/tests.txt (or pip install '
                         f'"cervdet[benchmarks]"); {e}')
    work = args.work_dir or Path(tempfile.mkdtemp(prefix='bench_vs_sahi_'))
    work.mkdir(parents=True, exist_ok=True)
    if args.checkpoint is None:
        args.checkpoint = random_checkpoint(args.config, work / 'random.pth')
        print(f'random-weight checkpoint {args.checkpoint} (speed only)')
    inputs, border = {}, {}
    field = args.field
    if args.smoke:
        import cv2
        img = cv2.imread(str(field))
        if img is None:
            raise FileNotFoundError(f'cannot read {field}')
        field = work / 'field_smoke.png'
        cv2.imwrite(str(field), img[:400, :600])
        args.repeats, args.tile_size, args.overlap = 1, 256, 32
    inputs['field'] = field
    if args.border_cells:
        p = work / 'field_border_cells.jpg'
        border['field+border'] = border_cell_field(field, p, args.tile_size,
                                                   args.overlap)
        inputs['field+border'] = p
    if args.synthetic_size:
        inputs[f'synth{args.synthetic_size}'] = synthetic_slide(
            work / f'synthetic_{args.synthetic_size}.tif',
            args.synthetic_size)
    print(f'cores {os.cpu_count()}, threads {args.threads}, load average '
          f'{os.getloadavg()}; tile {args.tile_size} overlap {args.overlap} '
          f'score {args.score_thr}; checkpoint {args.checkpoint}', flush=True)
    rows = compare(inputs, args, border)
    print(format_table(rows))
    print(f'load average after: {os.getloadavg()}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(rows=rows, args={k: str(v) for k, v in
                                            vars(args).items()}), f, indent=2)
    return rows


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        print('RESULT ' + json.dumps(run_one(child_args(sys.argv[2:])),
                                     default=float))
    else:
        main()
