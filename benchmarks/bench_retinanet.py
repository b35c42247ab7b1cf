"""Train-iteration and inference time of the RetinaNet configs on this machine.

Usage:
    python benchmarks/bench_retinanet.py [--configs A.py B.py] [--iters 5]

For each config: the model is built without pre-trained weights, a batch of
``train_dataloader.batch_size`` images at the config's input size with 20
ground-truth boxes each is made, and

- train: seconds per ``train_step`` (forward, backward, optimizer step),
- inference: seconds per image of ``test_step`` with batch 1,

are the medians over ``--iters`` timed runs after one warm-up run. The machine's
core count and torch's thread count are printed with the results.
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

DEFAULT_CONFIGS = [
    'configs/retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_'
    'cervical-mosaic-bethesda-512.py',
    'configs/retinanet/retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py',
]


def _median_time(fn, iters: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_config(config: str, iters: int) -> dict:
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from cervdet.utils.launch import load_config

    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    size = cfg.img_scale if 'img_scale' in cfg else (1024, 1024)
    batch = cfg.train_dataloader.batch_size
    num_classes = cfg.model.bbox_head.num_classes
    torch.manual_seed(0)
    train_data = demo_mm_inputs(
        batch, [[3, size[1], size[0]]] * batch,
        num_items=[20] * batch,
        num_classes=num_classes)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    t_train = _median_time(lambda: model.train_step(train_data, optim_wrapper),
                           iters)
    test_data = demo_mm_inputs(
        1, [[3, size[1], size[0]]], num_items=[20], num_classes=num_classes)
    model.eval()
    with torch.no_grad():
        t_test = _median_time(lambda: model.test_step(test_data), iters)
    return dict(
        config=osp.basename(config),
        size=f'{size[0]}x{size[1]}',
        batch=batch,
        train_s_per_iter=t_train,
        train_s_per_img=t_train / batch,
        infer_s_per_img=t_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--iters', type=int, default=5)
    args = parser.parse_args(argv)

    import torch
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} '
          f'with {torch.get_num_threads()} threads, '
          f'cuda available: {torch.cuda.is_available()}')
    load_before = os.getloadavg()
    rows = [bench_config(c, args.iters) for c in args.configs]
    # Other work on the cores slows every row alike; the load says how much.
    print(f'load average (1/5/15 min) before: '
          f'{"/".join(f"{x:.2f}" for x in load_before)}, after: '
          f'{"/".join(f"{x:.2f}" for x in os.getloadavg())}')
    print(f'{"config":<70} {"input":>9} {"batch":>5} {"train s/iter":>12} '
          f'{"train s/img":>11} {"infer s/img":>11}')
    for r in rows:
        print(f'{r["config"]:<70} {r["size"]:>9} {r["batch"]:>5} '
              f'{r["train_s_per_iter"]:>12.3f} {r["train_s_per_img"]:>11.3f} '
              f'{r["infer_s_per_img"]:>11.3f}')
    return rows


if __name__ == '__main__':
    main()
