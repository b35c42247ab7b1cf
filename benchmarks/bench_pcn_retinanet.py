"""Cost of the PCN distillation: a stage-3 training step vs a plain RetinaNet step.

Usage:
    python benchmarks/bench_pcn_retinanet.py [--iters 2] [--size 1024]
        [--batch 2] [--topk 10]

Both models are built from the shipped configs (the paper's R50-FPN RetinaNet
at 1024 px, and PCNRetinaNet with the SE-ResNeXt-50 (32x4d) PCN), without
pre-trained weights; the PCN-RetinaNet gets the plain model's weights so both
do the same detector work. On the same batch (``--batch`` images of
``--size``^2 with 20 ground-truth boxes each), in one process, plain and PCN
training steps (forward, backward, Adam step) alternate: one warm-up step each,
then ``--iters`` timed steps each, so that load from other processes hits both
alike. Reported per model:

- time: median wall seconds per step over the timed steps, and median CPU
  seconds (``time.process_time``: user + system time of all threads of the
  process), which other programs on the machine inflate much less than wall
  time;
- memory: the peak memory a step adds to what the process holds before it.
  On CUDA, ``torch.cuda.max_memory_allocated`` minus ``memory_allocated``
  before the step. On CPU, the peak resident set size (RSS, sampled every
  2 ms by a thread reading ``/proc/self/statm``) minus the RSS at the start
  of the step, after ``gc.collect()`` and glibc's ``malloc_trim(0)`` return
  freed memory to the OS. The largest value over all steps of a model.

The score threshold of the box selection is set to 0 so that an untrained
detector yields the K boxes per image a trained one does (the distillation
work is then exactly that of training; asserted every step). The time ratio
should be at most 1.3.
"""
import argparse
import copy
import ctypes
import gc
import os
import os.path as osp
import statistics
import sys
import threading
import time
import warnings

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..')
PLAIN = 'configs/retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py'
PCN = ('configs/pcn_retinanet/'
       'pcn-retinanet_r50_fpn_rank-rcc_adam-12e_cervical-mosaic-bethesda-1024.py')


def build(config: str, topk: int):
    """Model (no downloads, no PCN checkpoint) and its optimizer wrapper."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from cervdet.utils.launch import load_config

    cfg = load_config(osp.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    if cfg.model.type == 'PCNRetinaNet':
        cfg.model.pcn_checkpoint = None
        cfg.model.distill_cfg.update(score_thr=0.0, topk=topk)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the PCN keeps random weights here
        model.init_weights()
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


class PeakRSS:
    """Peak RSS above the RSS at ``__enter__``, sampled by a thread (MiB)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.page = os.sysconf('SC_PAGE_SIZE')

    def rss(self) -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> 'PeakRSS':
        gc.collect()
        try:
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        except OSError:  # not glibc
            pass
        self.base = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        self.growth_mib = (self.peak - self.base) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--topk', type=int, default=10)
    args = parser.parse_args(argv)

    import torch
    from mmdet.testing import demo_mm_inputs
    cuda = torch.cuda.is_available()
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} with '
          f'{torch.get_num_threads()} threads, cuda: {cuda}')
    print(f'input {args.size}x{args.size}, batch {args.batch}, K={args.topk}; '
          'RetinaNet R50-FPN; PCN SE-ResNeXt-50 (32x4d) at 224')

    plain, plain_opt = build(PLAIN, args.topk)
    pcn, pcn_opt = build(PCN, args.topk)
    pcn.load_state_dict(plain.state_dict(), strict=True)  # same detector
    device = 'cuda' if cuda else 'cpu'
    plain.to(device)
    pcn.to(device)
    torch.manual_seed(0)
    data = demo_mm_inputs(args.batch, [[3, args.size, args.size]] * args.batch,
                          num_items=[20] * args.batch, num_classes=5)

    def run_step(model, optim):
        """One train step: (wall s, CPU s, memory growth MiB, log_vars)."""
        batch = copy.deepcopy(data)
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            t0, c0 = time.perf_counter(), time.process_time()
            log = model.train_step(batch, optim)
            torch.cuda.synchronize()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            mem = (torch.cuda.max_memory_allocated() - base) / 2**20
            return dt, dc, mem, log
        with PeakRSS() as peak:
            t0, c0 = time.perf_counter(), time.process_time()
            log = model.train_step(batch, optim)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
        return dt, dc, peak.growth_mib, log

    runs = dict(plain=[], pcn=[])
    for i in range(1 + args.iters):
        for name, model, optim in (('plain', plain, plain_opt),
                                   ('pcn', pcn, pcn_opt)):
            dt, dc, mem, log = run_step(model, optim)
            if name == 'pcn':
                boxes = float(log['pcn_boxes'])
                assert boxes == args.topk, f'{boxes} boxes per image, not K'
            runs[name].append((dt, dc, mem, i == 0))
            print(f'  step {i} {name:5s}: {dt:8.2f} s wall, {dc:8.2f} s CPU, '
                  f'+{mem:7.0f} MiB{" (warm-up)" if i == 0 else ""}',
                  flush=True)

    # the PCN's share of a step: its forward on B*K patches
    patches = torch.randn(args.batch * args.topk, 3, 224, 224, device=device)
    pcn.pcn_forward(patches)
    t0, c0 = time.perf_counter(), time.process_time()
    pcn.pcn_forward(patches)
    t_fwd, c_fwd = time.perf_counter() - t0, time.process_time() - c0

    res = {}
    for name in ('plain', 'pcn'):
        timed = [r for r in runs[name] if not r[3]]
        res[name] = dict(wall=statistics.median(r[0] for r in timed),
                         cpu=statistics.median(r[1] for r in timed),
                         walls=[r[0] for r in timed],
                         cpus=[r[1] for r in timed],
                         mem=max(r[2] for r in timed))
    ratio_w = res['pcn']['wall'] / res['plain']['wall']
    ratio_c = res['pcn']['cpu'] / res['plain']['cpu']
    ratio_m = res['pcn']['mem'] / max(res['plain']['mem'], 1e-9)
    mem_kind = ('CUDA max_memory_allocated growth' if cuda else
                'peak RSS growth over the step (sampled, after malloc_trim)')
    print(f'{"":24s} {"wall s/step":>11s} {"CPU s/step":>11s} '
          f'{"peak MiB/step":>14s}   timed runs (wall | CPU s)')
    for name, label in (('plain', 'plain RetinaNet'),
                        ('pcn', 'PCN-RetinaNet (stage 3)')):
        r = res[name]
        print(f'{label:24s} {r["wall"]:11.2f} {r["cpu"]:11.2f} '
              f'{r["mem"]:14.0f}   '
              f'{" ".join(f"{t:.1f}" for t in r["walls"])} | '
              f'{" ".join(f"{t:.1f}" for t in r["cpus"])}')
    print(f'{"ratio PCN / plain":24s} {ratio_w:11.3f} {ratio_c:11.3f} '
          f'{ratio_m:14.3f}')
    print(f'PCN forward alone on {args.batch * args.topk} patches: '
          f'{t_fwd:.2f} s wall, {c_fwd:.2f} s CPU; memory = {mem_kind} '
          '(timed steps, medians; max for memory)')
    ok = max(ratio_w, ratio_c) <= 1.3
    print(f'time overhead target <= 1.3x: {"met" if ok else "NOT met"} '
          f'(wall {ratio_w:.2f}x, CPU {ratio_c:.2f}x)')
    return dict(plain=res['plain'], pcn=res['pcn'], ratio_wall=ratio_w,
                ratio_cpu=ratio_c, memory_ratio=ratio_m,
                pcn_forward_wall_s=t_fwd, pcn_forward_cpu_s=c_fwd)


if __name__ == '__main__':
    main()
