"""Dual-alignment semi-supervised step against the supervised step.

Usage:
    python benchmarks/bench_dual_align.py [--config CFG] [--data-root DIR]
        [--iters 3] [--score-thr 0.1]

One batch is read through the config's own pipelines from real mosaics
(``split_semi.py`` output under ``<data-root>/annotations/semi``; made here
in a temporary folder when missing): the sampler's ``batch_size`` images,
labeled and unlabeled 1:1. Side by side in one process, alternating:

- ``supervised``: the student Faster R-CNN's own ``train_step`` on the
  labeled half (what the supervised baseline runs);
- ``semi``: ``DualAlignFasterRCNN.train_step`` on the whole batch (the same
  labeled half plus the unlabeled half: the network's own proposals and
  pseudo labels on the unlabeled view (the paper's default; an EMA teacher on
  a weak view with ``pseudo_labeler='ema_teacher'``), proxy and prototype
  losses, memory-bank push).

Medians over ``--iters`` timed steps after one warm-up step each, wall and
process CPU seconds, and the peak RSS growth over a step (sampled by a
thread, after ``gc.collect`` and ``malloc_trim``). ``--score-thr`` lowers
the pseudo-label threshold so that an untrained network yields pseudo
labels and every unlabeled term runs (the cost being measured).
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

DEFAULT_CONFIG = ('configs/semi_dual_align/'
                  'dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_'
                  'cervical-mosaic-bethesda-512.py')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--data-root',
                        default='data/cervical-mosaic-bethesda-512')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--score-thr', type=float, default=0.1)
    args = parser.parse_args(argv)

    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from benchmarks.bench_pcn_retinanet import PeakRSS
    from cervdet.utils.launch import load_config

    cfg = load_config(args.config)
    init_default_scope('mmdet')
    root = osp.abspath(args.data_root)
    semi = osp.join(root, 'annotations', 'semi')
    tmp = None
    if not osp.isfile(osp.join(semi, 'train_unlabeled.json')):
        # keep the user's data folder untouched: split into a temporary one
        from cervdet.datasets.semi_split import write_semi_split
        tmp = tempfile.mkdtemp(prefix='bench_dual_align_')
        write_semi_split(osp.join(root, 'annotations', 'train.json'),
                         osp.join(tmp, 'semi'), percents=[25], seed=0)
        semi = osp.join(tmp, 'semi')
    datasets = []
    for ds_cfg in cfg.train_dataloader.dataset.datasets:
        ds_cfg = copy.deepcopy(ds_cfg)
        ds_cfg.data_root = root + '/'
        ds_cfg.ann_file = osp.join(semi, osp.basename(ds_cfg.ann_file))
        datasets.append(DATASETS.build(ds_cfg))
    labeled, unlabeled = datasets
    half = cfg.train_dataloader.batch_size // 2
    with_boxes = [i for i in range(len(labeled))
                  if labeled.get_data_info(i)['instances']]
    torch.manual_seed(0)
    items_l = [labeled[with_boxes[i % len(with_boxes)]] for i in range(half)]
    items_u = [unlabeled[i] for i in range(half)]
    semi_batch = pseudo_collate(items_l + items_u)
    sup_batch = pseudo_collate(
        [dict(inputs=it['inputs']['sup'],
              data_samples=it['data_samples']['sup']) for it in items_l])

    cfg.model.detector.backbone.init_cfg = None
    cfg.model.semi_train_cfg.score_thr = args.score_thr
    model = MODELS.build(cfg.model)
    model.init_weights()
    if hasattr(model, 'teacher'):
        model.teacher.load_state_dict(model.student.state_dict())
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4,
                                         momentum=0.9))
    rows = dict(supervised=[], semi=[])
    logs = {}

    def run(name):
        t0, c0 = time.perf_counter(), time.process_time()
        with PeakRSS() as mem:
            if name == 'semi':
                logs.update(model.train_step(copy.deepcopy(semi_batch),
                                             optim))
            else:
                model.student.train_step(copy.deepcopy(sup_batch), optim)
        return (time.perf_counter() - t0, time.process_time() - c0,
                mem.growth_mib)

    for step in range(args.iters + 1):
        for name in ('supervised', 'semi'):
            r = run(name)
            if step > 0:
                rows[name].append(r)

    shape = tuple(semi_batch['inputs']['sup'][0].shape[-2:])
    print(f'config: {args.config}')
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} with '
          f'{torch.get_num_threads()} threads, cuda available: '
          f'{torch.cuda.is_available()}; load average (1 min) '
          f'{os.getloadavg()[0]:.2f}')
    print(f'batch: {half} labeled + {half} unlabeled images of '
          f'{args.data_root}, input '
          f'about {shape[0]}x{shape[1]}; score_thr {args.score_thr}: '
          f'{float(logs.get("num_pseudo", 0)):.1f} pseudo labels per '
          f'unlabeled image, bank fill {float(logs.get("bank_fill", 0)):.0f}')
    print('| step | wall s | CPU s | peak RSS growth MiB |')
    print('|---|---|---|---|')
    med = {}
    for name, rs in rows.items():
        med[name] = [statistics.median(r[i] for r in rs) for i in range(2)] \
            + [max(r[2] for r in rs)]
        print(f'| {name} | {med[name][0]:.3f} | {med[name][1]:.3f} | '
              f'{med[name][2]:.0f} |')
    print(f'| ratio semi / supervised | {med["semi"][0] / med["supervised"][0]:.2f}'
          f' | {med["semi"][1] / med["supervised"][1]:.2f} | '
          f'{med["semi"][2] / max(med["supervised"][2], 1e-9):.2f} |')
    print(f'({args.iters} timed steps each, medians; memory: max)')
    if tmp is not None:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
