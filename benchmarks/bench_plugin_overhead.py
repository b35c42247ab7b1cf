"""cervdet's training path vs plain MMDetection 3.3, and the data pipeline.

Usage::

    python benchmarks/bench_plugin_overhead.py [--data-root DIR]
        [--epochs 2] [--repeats 2] [--json OUT.json] [--smoke]

1. **Plugin overhead.** The CPU RetinaNet config trained through cervdet
   (``tools/train.py``: ``CervdetRunner``, cervdet's dataset, hooks, custom
   imports) and the *same model and data* as a plain MMDetection config
   (``custom_imports`` dropped, mmengine's ``Runner``, mmdet's
   ``CocoDataset`` with the same classes; written out with
   ``Config.dump``) trained by MMDetection's own ``tools/train.py`` (from
   ``mmdet/.mim``) with cervdet not on the path. Runs alternate
   (cervdet, plain, cervdet, ...); per run the median ``time`` and
   ``data_time`` per iteration of MMEngine's log (``vis_data/scalars.json``,
   the first 5 iterations dropped) and the **CPU seconds per iteration**
   (the same iterations; the training process and its dataloader workers,
   read from ``/proc`` by a small hook both configs import,
   :data:`CPU_HOOK`). The ratio cervdet / plain is taken per round, on CPU
   seconds (``ratio_vs_plain``; the wall-time ratio is ``ratio_wall``): on a
   machine shared with other jobs wall time also measures the waiting.
   ``--threads`` (default 1) sets ``OMP_NUM_THREADS`` of both.
   **Inference** the same way: each path's own ``tools/test.py`` (cervdet's;
   MMDetection's from ``mmdet/.mim``) on the test split with the checkpoint
   the first cervdet training saved; CPU and wall seconds per test iteration
   (the hook's times after each iteration; the first 5 dropped; the COCO
   evaluation after the last iteration is not counted).
2. **Data pipeline.** The config's training dataloader alone (decode +
   augment + collate, its ``num_workers``) in images per second, against the
   model's images per second in the runs above; ``data_time / time`` of
   the runs is the share of a step spent waiting on data.

Data: the 512 mosaic set (``build_mosaic.py --preset 512``, real CRIC crops;
built in the work folder when ``--data-root`` is not given).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CPU_CFG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
#: Columns of the table (one row per path, then the data pipeline row).
TABLE_COLUMNS = ('path', 'iter_s', 'cpu_iter_s', 'data_s', 'data_share',
                 'imgs_per_s', 'ratio_vs_plain', 'ratio_std', 'ratio_wall',
                 'ratio_wall_std', 'runs', 'load_avg')
#: Iterations dropped at the start of each run (warm-up).
SKIP_ITERS = 5
#: A hook module written into the work dir and imported by both configs
#: (neither needs cervdet for it): CPU seconds of the training process and
#: its children (dataloader workers) after every training iteration.
CPU_HOOK = '''
import json, os, time
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

_TICK = os.sysconf('SC_CLK_TCK')


def _tree_cpu():
    """CPU seconds of this process (all threads) and its live children."""
    total, todo, me = 0., [os.getpid()], os.getpid()
    while todo:
        pid = todo.pop()
        try:
            if pid == me:
                t = os.times()
                total += t.user + t.system
            else:
                with open(f'/proc/{pid}/stat') as f:
                    st = f.read().rsplit(')', 1)[1].split()
                total += (int(st[11]) + int(st[12])) / _TICK
            for task in os.listdir(f'/proc/{pid}/task'):
                with open(f'/proc/{pid}/task/{task}/children') as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


@HOOKS.register_module()
class BenchCPUTimeHook(Hook):
    priority = 'VERY_LOW'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append((time.perf_counter(), time.process_time(),
                          _tree_cpu()))

    def after_train(self, runner):
        with open(os.path.join(runner.work_dir, 'cpu_times.json'), 'w') as f:
            json.dump(self.rows, f)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        self.rows.append((time.perf_counter(), time.process_time(),
                          _tree_cpu()))

    def after_test_epoch(self, runner, metrics=None):
        with open(os.path.join(runner.work_dir, 'cpu_times.json'), 'w') as f:
            json.dump(self.rows, f)
'''


def cervdet_config(path: Path, data_root: Path, epochs: int,
                   workers: int) -> Path:
    from mmengine.config import Config
    root = str(data_root).rstrip('/') + '/'
    base = Config.fromfile(str(CPU_CFG))
    imports = list(base.get('custom_imports', {}).get('imports', [])) + \
        ['bench_cpu_hook']
    hooks = [dict(h) for h in base.get('custom_hooks', [])] + \
        [dict(type='BenchCPUTimeHook')]
    (path.parent / 'bench_cpu_hook.py').write_text(CPU_HOOK)
    path.write_text(f"""
_base_ = [{str(CPU_CFG)!r}]
data_root = {root!r}
train_dataloader = dict(num_workers={workers},
                        persistent_workers={workers > 0},
                        dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/test.json')
train_cfg = dict(max_epochs={epochs}, val_interval=1000)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1000))
randomness = dict(seed=0)
custom_imports = dict(imports={imports!r}, allow_failed_imports=False)
custom_hooks = {hooks!r}
""")
    return path


def plain_config(cervdet_cfg: Path, out: Path) -> Path:
    """The same model and data as a plain mmdet 3.3 config (no cervdet)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(cervdet_cfg))
    classes = None
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader']['dataset']
        classes = ds.get('metainfo', {}).get('classes') or classes
    if classes is None:
        from mmdet.registry import DATASETS

        import cervdet  # noqa: F401
        classes = DATASETS.get(cfg.train_dataloader.dataset.type
                               ).METAINFO['classes']
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader']['dataset']
        ds['type'] = 'CocoDataset'
        ds['metainfo'] = dict(classes=tuple(classes))
    cfg['dataset_type'] = 'CocoDataset'
    cfg['custom_imports'] = dict(imports=['bench_cpu_hook'],
                                 allow_failed_imports=False)
    cfg['runner_type'] = 'Runner'
    cfg['default_scope'] = 'mmdet'
    text = cfg.pretty_text
    if 'cervdet' in text.replace(str(ROOT), ''):
        raise RuntimeError('the plain config still names cervdet: '
                           + ', '.join(ln for ln in text.splitlines()
                                       if 'cervdet' in ln)[:500])
    out.write_text(text)
    return out


def _iter_times(work: Path):
    logs = sorted(work.glob('*/vis_data/scalars.json'))
    if not logs:
        raise FileNotFoundError(f'no MMEngine scalars log under {work}')
    t, d = [], []
    with open(logs[-1]) as f:
        for line in f:
            r = json.loads(line)
            if 'time' in r and 'data_time' in r:
                t.append(r['time'])
                d.append(r['data_time'])
    t, d = t[SKIP_ITERS:] or t, d[SKIP_ITERS:] or d
    return statistics.median(t), statistics.median(d)


def _cpu_per_iter(work: Path) -> float:
    """CPU seconds per iteration (process + dataloader workers) over the
    iterations after the first ``SKIP_ITERS``, from the hook's file."""
    f = work / 'cpu_times.json'
    if not f.is_file():
        raise FileNotFoundError(f'{f} missing: the BenchCPUTimeHook did not '
                                'run (custom_hooks of the config?)')
    rows = json.loads(f.read_text())
    skip = min(SKIP_ITERS, len(rows) - 2)
    if skip < 0:
        raise ValueError(f'{f}: {len(rows)} iterations, need >= 2')
    return (rows[-1][2] - rows[skip][2]) / (len(rows) - 1 - skip)


def _wall_per_iter(work: Path) -> float:
    """Median wall seconds between the hook's iteration stamps."""
    rows = json.loads((work / 'cpu_times.json').read_text())
    t = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
    t = t[SKIP_ITERS:] or t
    if not t:
        raise ValueError(f'{work}/cpu_times.json: fewer than 2 iterations')
    return statistics.median(t)


def _command(kind: str, script: str, cfg: Path, threads: int):
    """The command and environment of ``kind``'s own ``tools/<script>``."""
    import mmdet
    hook_dir = str(cfg.parent)  # bench_cpu_hook.py
    if kind == 'cervdet':
        cmd = [sys.executable, str(ROOT / 'tools' / script), str(cfg)]
        env = dict(os.environ, PYTHONPATH=f'{ROOT}:{hook_dir}')
    else:
        cmd = [sys.executable, str(Path(mmdet.__file__).parent / '.mim' /
                                   'tools' / script), str(cfg)]
        env = dict(os.environ, PYTHONPATH=hook_dir)
    env['OMP_NUM_THREADS'] = str(threads)
    return cmd, env


def weights_only(ckpt: Path, out: Path) -> Path:
    """``state_dict`` and ``meta.dataset_meta`` of ``ckpt`` (what a user
    publishes): MMEngine 0.10.7's loader under torch >= 2.6 (``torch.load``
    with ``weights_only=True``) refuses the training state MMEngine itself
    saved (``HistoryBuffer`` of the message hub), so plain MMDetection's
    ``tools/test.py`` cannot load a full training checkpoint."""
    import torch
    full = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    meta = {k: v for k, v in (full.get('meta') or {}).items()
            if k == 'dataset_meta'}
    torch.save(dict(state_dict=full['state_dict'], meta=meta), str(out))
    return out


def run_test(kind: str, cfg: Path, ckpt: Path, work: Path,
             threads: int = 1) -> dict:
    """Inference through ``kind``'s ``tools/test.py``: seconds per test
    iteration (wall and CPU)."""
    cmd, env = _command(kind, 'test.py', cfg, threads)
    cmd += [str(ckpt), '--work-dir', str(work)]
    work.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=str(work.parent))
    if proc.returncode != 0:
        raise RuntimeError(f'{kind} test failed:\n{proc.stderr[-4000:]}')
    return dict(iter_s=_wall_per_iter(work), cpu_iter_s=_cpu_per_iter(work),
                load_avg=os.getloadavg()[0])


def run_train(kind: str, cfg: Path, work: Path, threads: int = 1) -> dict:
    cmd, env = _command(kind, 'train.py', cfg, threads)
    cmd += ['--work-dir', str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=str(work.parent))
    if proc.returncode != 0:
        raise RuntimeError(f'{kind} training failed:\n{proc.stderr[-4000:]}')
    it, dt = _iter_times(work)
    return dict(iter_s=it, data_s=dt, cpu_iter_s=_cpu_per_iter(work),
                load_avg=os.getloadavg()[0])


def loader_throughput(cfg_path: Path, batches: int) -> float:
    """Images per second of the config's training dataloader alone."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import cervdet  # noqa: F401
    cfg = Config.fromfile(str(cfg_path))
    init_default_scope('mmdet')
    loader = Runner.build_dataloader(cfg.train_dataloader)
    n, t0, it = 0, None, iter(loader)
    for i in range(batches + 1):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        if i == 0:  # workers started, first batch out
            t0 = time.perf_counter()
            continue
        n += len(b['inputs'])
    return n / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-root', type=Path, default=None)
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--workers', type=int, default=2,
                   help="train dataloader workers (the config's: 2)")
    p.add_argument('--threads', type=int, default=1,
                   help='OMP_NUM_THREADS of the training runs')
    p.add_argument('--loader-batches', type=int, default=30)
    p.add_argument('--work-dir', type=Path, default=None)
    p.add_argument('--json', type=Path, default=None)
    p.add_argument('--smoke', action='store_true',
                   help='a 256 px 8-image set, 1 epoch, 1 repeat')
    args = p.parse_args(argv)
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix='bench_plugin_'))
            ).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(work))  # bench_cpu_hook (the configs import it)
    data = args.data_root.resolve() if args.data_root else None
    if data is None:
        from cervdet.datasets.synthesis import build_mosaic_dataset
        data = work / 'mosaic'
        if not (data / 'annotations' / 'train.json').is_file():
            kw = dict(img_size=256, num_train=8, num_val=2, num_test=2) \
                if args.smoke else {}
            build_mosaic_dataset(data, source='bethesda', preset='512',
                                 progress=False, seed=0, **kw)
    if args.smoke:
        args.epochs, args.repeats, args.loader_batches = 1, 1, 4
    print(f'cores {os.cpu_count()}, load average {os.getloadavg()}, data '
          f'{data}', flush=True)
    ccfg = cervdet_config(work / 'cervdet_cfg.py', data, args.epochs,
                          args.workers)
    pcfg = plain_config(ccfg, work / 'plain_cfg.py')
    runs = {'cervdet': [], 'plain': []}
    for r in range(args.repeats):
        for kind, cfg in (('cervdet', ccfg), ('plain', pcfg)):
            res = run_train(kind, cfg, work / f'{kind}_{r}', args.threads)
            runs[kind].append(res)
            print(f'  {kind:8s} round {r}: {res["iter_s"]:.3f} s/iter wall, '
                  f'{res["cpu_iter_s"]:.3f} CPU s/iter, data '
                  f'{res["data_s"]:.3f} s, load {res["load_avg"]:.1f}',
                  flush=True)
    ckpt = weights_only(work / 'cervdet_0' / f'epoch_{args.epochs}.pth',
                        work / 'weights.pth')
    tests = {'cervdet': [], 'plain': []}
    for r in range(args.repeats):
        for kind, cfg in (('cervdet', ccfg), ('plain', pcfg)):
            res = run_test(kind, cfg, ckpt, work / f'{kind}_test_{r}',
                           args.threads)
            tests[kind].append(res)
            print(f'  {kind:8s} test round {r}: {res["iter_s"]:.3f} s/iter '
                  f'wall, {res["cpu_iter_s"]:.3f} CPU s/iter', flush=True)
    from mmengine.config import Config
    batch = Config.fromfile(str(ccfg)).train_dataloader.batch_size
    tbatch = Config.fromfile(str(ccfg)).test_dataloader.batch_size
    pairs = list(zip(runs['cervdet'], runs['plain']))
    ratios = [c['cpu_iter_s'] / p_['cpu_iter_s'] for c, p_ in pairs]
    ratios_wall = [c['iter_s'] / p_['iter_s'] for c, p_ in pairs]
    rows = []
    for kind in ('cervdet', 'plain'):
        it = statistics.mean(r['iter_s'] for r in runs[kind])
        dt = statistics.mean(r['data_s'] for r in runs[kind])
        mine = kind == 'cervdet'
        rows.append(dict(
            path=f'{kind} train step (batch {batch})', iter_s=it,
            cpu_iter_s=statistics.mean(r['cpu_iter_s'] for r in runs[kind]),
            data_s=dt, data_share=dt / it, imgs_per_s=batch / it,
            ratio_vs_plain=statistics.mean(ratios) if mine else 1.0,
            ratio_std=statistics.pstdev(ratios) if mine else 0.,
            ratio_wall=statistics.mean(ratios_wall) if mine else 1.0,
            ratio_wall_std=statistics.pstdev(ratios_wall) if mine else 0.,
            runs=len(runs[kind]),
            load_avg=statistics.mean(r['load_avg'] for r in runs[kind])))
    pairs = list(zip(tests['cervdet'], tests['plain']))
    tr = [c['cpu_iter_s'] / p_['cpu_iter_s'] for c, p_ in pairs]
    trw = [c['iter_s'] / p_['iter_s'] for c, p_ in pairs]
    for kind in ('cervdet', 'plain'):
        mine = kind == 'cervdet'
        it = statistics.mean(r['iter_s'] for r in tests[kind])
        rows.append(dict(
            path=f'{kind} inference (tools/test.py, batch {tbatch})',
            iter_s=it,
            cpu_iter_s=statistics.mean(r['cpu_iter_s'] for r in tests[kind]),
            data_s=None, data_share=None, imgs_per_s=tbatch / it,
            ratio_vs_plain=statistics.mean(tr) if mine else 1.0,
            ratio_std=statistics.pstdev(tr) if mine else 0.,
            ratio_wall=statistics.mean(trw) if mine else 1.0,
            ratio_wall_std=statistics.pstdev(trw) if mine else 0.,
            runs=len(tests[kind]),
            load_avg=statistics.mean(r['load_avg'] for r in tests[kind])))
    ips = loader_throughput(ccfg, args.loader_batches)
    rows.append(dict(path=f'train dataloader alone ({args.workers} workers)',
                     iter_s=batch / ips, cpu_iter_s=None, data_s=None,
                     data_share=None, imgs_per_s=ips,
                     ratio_vs_plain=None, ratio_std=None, ratio_wall=None,
                     ratio_wall_std=None, runs=1,
                     load_avg=os.getloadavg()[0]))
    print('| ' + ' | '.join(TABLE_COLUMNS) + ' |')
    for r in rows:
        print('| ' + ' | '.join('-' if r[k] is None else f'{r[k]:.3g}'
                                if isinstance(r[k], float) else str(r[k])
                                for k in TABLE_COLUMNS) + ' |')
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == '__main__':
    main()
