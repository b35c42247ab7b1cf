"""DINO pre-training throughput (tiles per second) of the configs/ssl
backbones, measured side by side in one process.

Usage:
    python benchmarks/bench_dino.py [--configs CFG ...] [--tiles DIR]
        [--batch-size 16] [--iters 3]

For every config: one batch of real tiles (``--tiles``, e.g. the output of
``tools/ssl/extract_tiles.py``) through the config's own training pipeline
(two global views, as shipped), then ``--iters`` timed ``train_step`` calls
(student forward + backward + optimizer step, teacher forward and EMA
update) after one warm-up step. Reports the median wall time per step and
tiles (images) per second; each tile gives two views. The configs run at the
same batch size so their numbers compare; the paper-size configs (224 px
ResNet-50 / ViT-S/16) are slow on a CPU: pass them explicitly.
"""
import argparse
import glob
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

DEFAULT_CONFIGS = [
    'configs/ssl/dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py',
    'configs/ssl/dino_vit-tiny-p16_adamw-30e_1xb32_cervical-tiles.py',
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--tiles', default='data/cervical-tiles')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--iters', type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from mmengine.config import Config
    from mmengine.dataset import Compose, default_collate
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import cervdet  # noqa: F401

    tiles = sorted(glob.glob(osp.join(args.tiles, '*.jpg')) +
                   glob.glob(osp.join(args.tiles, '*.png')))
    if len(tiles) < args.batch_size:
        sys.exit(f'{args.tiles}: {len(tiles)} tiles, need >= '
                 f'{args.batch_size}; make them with tools/ssl/'
                 'extract_tiles.py (configs/ssl/README.md)')
    load = os.getloadavg()[0]
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} with '
          f'{torch.get_num_threads()} threads, cuda available: '
          f'{torch.cuda.is_available()}; load average (1 min) {load:.2f}')
    print(f'batch: {args.batch_size} real tiles from {args.tiles} '
          f'({len(tiles)} there), the config\'s training pipeline')
    # what a runner puts in the message hub (epoch-based schedules read it)
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', 10000)
    hub.update_info('max_epochs', 100)
    rows = []
    for path in args.configs:
        cfg = Config.fromfile(path)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            pipeline = Compose(cfg.train_dataloader.dataset.pipeline)
            items = [pipeline(dict(img_path=t)) for t in
                     tiles[:args.batch_size]]
            model = MODELS.build(cfg.model)
            model.init_weights()
            optim = build_optim_wrapper(model, cfg.optim_wrapper)
        batch = default_collate(items)
        size = tuple(batch['inputs'][0].shape[-2:])
        times = []
        for i in range(args.iters + 1):
            hub.update_info('iter', 1000 + i)
            t0 = time.perf_counter()
            model.train_step(batch, optim)
            if i:  # the first step warms up
                times.append(time.perf_counter() - t0)
        step = statistics.median(times)
        name = osp.basename(path)[:-3]
        rows.append((name, size, step, args.batch_size / step))
        del model, optim
    print('| config | view px | s / step | tiles / s |')
    print('|---|---|---|---|')
    for name, size, step, rate in rows:
        print(f'| {name} | {size[0]}x{size[1]} | {step:.2f} | {rate:.3g} |')
    base = rows[0][3]
    for name, _, _, rate in rows[1:]:
        print(f'ratio {name} / {rows[0][0]}: {rate / base:.3g}')
    print(f'({args.iters} timed steps each after a warm-up, medians)')


if __name__ == '__main__':
    main()
