"""How close a training step comes to this machine's measured throughput.

Usage::

    python benchmarks/bench_hw_limit.py [--configs A.py B.py] [--iters 2]
        [--threads 1] [--json OUT.json] [--smoke]

In one process, for each config (default: the CPU RetinaNet R18 at its
config size and batch, and the RetinaNet R50 at 1024, batch 2):

1. the machine: float32 matmul (2048^3) and 3x3 conv (256 -> 256 channels,
   64x64, batch 4) throughput, and bfloat16 matmul (AMX / AVX512-BF16 when
   the CPU has them), in GFLOP per **CPU second** (so the number is per
   core and does not depend on how loaded the machine is) and per wall
   second;
2. the model: forward FLOPs of backbone + neck + head at the config's input
   size (mmengine's fvcore-style counter, ``get_model_complexity_info``,
   which counts one multiply-add as one "flop": doubled here to FLOPs); a
   training step is taken as 3x the forward (forward + backward of
   activations + backward of weights);
3. the step: ``train_step`` on ``demo_mm_inputs`` (20 boxes per image),
   one warm-up then ``--iters`` timed steps, CPU and wall seconds.

``achieved / possible`` = (3 x forward FLOPs x batch / step CPU seconds) /
(conv GFLOP per CPU second): the share of the measured conv throughput the
step reaches. CPU seconds include every thread, so with N threads a
perfectly parallel step shows the same ratio as with one.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CONFIGS = [
    'configs/retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_'
    'cervical-mosaic-bethesda-512.py',
    'configs/retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py',
]
#: Columns of the table (one row per config).
TABLE_COLUMNS = ('config', 'input', 'batch', 'fwd_gflops_per_img',
                 'step_gflops', 'step_cpu_s', 'step_wall_s',
                 'achieved_gflops_per_cpu_s', 'conv_gflops_per_cpu_s',
                 'matmul_gflops_per_cpu_s', 'bf16_matmul_gflops_per_cpu_s',
                 'achieved_over_conv', 'load_avg')


def _timed(fn, iters: int):
    """CPU and wall seconds of each of ``iters`` calls (after a warm-up)."""
    fn()
    cpu, wall = [], []
    for _ in range(iters):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return cpu, wall


def machine_throughput(iters: int = 3, smoke: bool = False) -> dict:
    """GFLOP per CPU second and per wall second of matmul and conv."""
    import torch
    n = 256 if smoke else 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    cpu, wall = _timed(lambda: a @ b, iters)
    mm = 2 * n**3 / 1e9
    out = dict(matmul_gflops_per_cpu_s=mm / statistics.median(cpu),
               matmul_gflops_per_wall_s=mm / statistics.median(wall))
    c, hw = (32, 16) if smoke else (256, 64)
    x = torch.randn(4, c, hw, hw)
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).eval()
    with torch.no_grad():
        cpu, wall = _timed(lambda: conv(x), iters)
    cf = 2 * 4 * c * c * 9 * hw * hw / 1e9
    out.update(conv_gflops_per_cpu_s=cf / statistics.median(cpu),
               conv_gflops_per_wall_s=cf / statistics.median(wall))
    from cervdet.apis.inference_speed import bf16_supported
    if bf16_supported(torch.device('cpu')):
        a16, b16 = a.bfloat16(), b.bfloat16()
        cpu, _ = _timed(lambda: a16 @ b16, iters)
        out['bf16_matmul_gflops_per_cpu_s'] = mm / statistics.median(cpu)
    else:
        out['bf16_matmul_gflops_per_cpu_s'] = None
    return out


def bench_config(config: str, iters: int, size=None, batch=None) -> dict:
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.analysis import get_model_complexity_info
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from cervdet.utils.launch import load_config
    cfg = load_config(str(ROOT / config) if not os.path.isabs(config)
                      else config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    size = size or (cfg.img_scale if 'img_scale' in cfg else (1024, 1024))
    batch = batch or cfg.train_dataloader.batch_size
    num_classes = cfg.model.bbox_head.num_classes

    class _Net(torch.nn.Module):  # backbone + neck + head, tensors only
        def __init__(self, det):
            super().__init__()
            self.det = det

        def forward(self, x):
            return self.det.bbox_head(self.det.extract_feat(x))

    model.eval()
    info = get_model_complexity_info(
        _Net(model), inputs=(torch.randn(1, 3, size[1], size[0]), ),
        show_table=False, show_arch=False)
    fwd = 2 * info['flops'] / 1e9  # multiply-adds -> FLOPs
    torch.manual_seed(0)
    data = demo_mm_inputs(batch, [[3, size[1], size[0]]] * batch,
                          num_items=[20] * batch, num_classes=num_classes)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    cpu, wall = _timed(lambda: model.train_step(data, optim), iters)
    step = 3 * fwd * batch
    return dict(config=Path(config).name, input=f'{size[0]}x{size[1]}',
                batch=batch, fwd_gflops_per_img=fwd, step_gflops=step,
                step_cpu_s=statistics.median(cpu),
                step_wall_s=statistics.median(wall),
                achieved_gflops_per_cpu_s=step / statistics.median(cpu))


def run(configs, iters: int, threads: int, smoke: bool = False) -> list:
    import torch
    torch.set_num_threads(threads)
    hw = machine_throughput(smoke=smoke)
    rows = []
    for c in configs:
        r = bench_config(c, iters, size=(64, 64) if smoke else None,
                         batch=1 if smoke else None)
        r.update(conv_gflops_per_cpu_s=hw['conv_gflops_per_cpu_s'],
                 matmul_gflops_per_cpu_s=hw['matmul_gflops_per_cpu_s'],
                 bf16_matmul_gflops_per_cpu_s=hw[
                     'bf16_matmul_gflops_per_cpu_s'],
                 achieved_over_conv=r['achieved_gflops_per_cpu_s'] /
                 hw['conv_gflops_per_cpu_s'],
                 load_avg=os.getloadavg()[0])
        rows.append(r)
        print(json.dumps(r), flush=True)
    print(f'machine (threads {threads}): ' + json.dumps(hw))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', type=Path, default=None)
    p.add_argument('--smoke', action='store_true',
                   help='64x64 inputs, batch 1, small matmul: seconds')
    args = p.parse_args(argv)
    print(f'cores {os.cpu_count()}, load average {os.getloadavg()}',
          flush=True)
    rows = run(args.configs, args.iters, args.threads, args.smoke)
    print('| ' + ' | '.join(TABLE_COLUMNS) + ' |')
    for r in rows:
        print('| ' + ' | '.join(f'{r[k]:.3g}' if isinstance(r[k], float)
                                else str(r[k]) for k in TABLE_COLUMNS) + ' |')
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == '__main__':
    main()
