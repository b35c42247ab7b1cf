"""FGD distillation step vs. the plain student step, and FGD mask cost.

Usage:
    python benchmarks/bench_fgd.py [--config CONFIG] [--iters 5]
        [--boxes 100 1000 5000] [--no-loop-reference]

Measured side by side in one process, on the machine this runs on:

1. ``train_step`` (forward, backward, optimizer step) of the plain student
   and of the :class:`FeatureDistiller` (student + frozen teacher forward + FGD
   losses), built from ``--config`` (default: the CPU-sized FGD config),
   on one batch of ``train_dataloader.batch_size`` images at the config's
   input size with 20 ground-truth boxes each. The two steps alternate
   (A, B, A, B, ...) so machine load hits both alike; medians are printed
   with their ratio.
2. :func:`fgd_masks` for every distilled level (the feature shapes of this
   config) with 100, 1000 and 5000 ground-truth boxes *per image* (cell
   sized: 24-160 px, as the 512 mosaic preset), its median time and its
   share of the distillation step (the step itself measured with 20 boxes
   per image, so the share is an upper bound: more boxes also slow the
   student's own loss). The target is < 5 %.
3. For reference, the same masks built with a Python loop over boxes (the
   way the FGD reference code does), to show what vectorising buys.

No pre-trained weights are needed: the teacher keeps its initialisation
(saved to a temporary checkpoint); timing does not depend on its quality.
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

DEFAULT_CONFIG = ('configs/fgd/fgd_retinanet_r18-w32_fpn_adam-20e_1xb4_'
                  'cervical-mosaic-bethesda-512.py')


def _no_download(model_cfg) -> None:
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None


def _boxes(num_imgs, num_boxes, size, generator):
    import torch
    h, w = size
    out = []
    for _ in range(num_imgs):
        side = torch.rand(num_boxes, 2, generator=generator) * 136 + 24
        xy = torch.rand(num_boxes, 2, generator=generator) * (
            torch.tensor([w, h]) - side).clamp(min=1)
        out.append(torch.cat([xy, xy + side], 1))
    return out


def _loop_masks(gt_bboxes, batch_input_shape, feat_shape):
    """Masks with a Python loop over boxes (reference for the speed-up)."""
    import math

    import torch
    H, W = feat_shape
    in_h, in_w = batch_input_shape
    fg = torch.zeros(len(gt_bboxes), H, W)
    for b, boxes in enumerate(gt_bboxes):
        for x1, y1, x2, y2 in boxes.tolist():
            c0 = min(max(math.floor(x1 * W / in_w), 0), W - 1)
            r0 = min(max(math.floor(y1 * H / in_h), 0), H - 1)
            c1 = max(min(math.ceil(x2 * W / in_w), W), c0 + 1)
            r1 = max(min(math.ceil(y2 * H / in_h), H), r0 + 1)
            area = (r1 - r0) * (c1 - c0)
            fg[b, r0:r1, c0:c1] = torch.clamp(fg[b, r0:r1, c0:c1],
                                              min=1.0 / area)
    bg = (fg == 0).float()
    bg = bg / bg.sum((1, 2), keepdim=True).clamp(min=1)
    return fg, bg


def _median(fn, iters):
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--boxes', type=int, nargs='+',
                        default=[100, 1000, 5000])
    parser.add_argument('--no-loop-reference', action='store_true')
    args = parser.parse_args(argv)

    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from cervdet.models.losses import fgd_masks
    from cervdet.models.utils import build_teacher_model_cfg
    from cervdet.utils.launch import load_config

    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    if model_cfg.type not in ('FeatureDistiller', 'FGDDistiller'):
        raise SystemExit(f'{args.config} is not a FeatureDistiller config')
    _no_download(model_cfg.student)
    teacher_cfg = build_teacher_model_cfg(model_cfg.teacher_cfg)
    _no_download(teacher_cfg)
    torch.manual_seed(0)
    teacher = MODELS.build(teacher_cfg)
    teacher.init_weights()
    tmp = tempfile.mkdtemp()
    ckpt = osp.join(tmp, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), ckpt)
    model_cfg.teacher_cfg = teacher_cfg
    model_cfg.teacher_ckpt = ckpt
    distiller = MODELS.build(model_cfg)
    distiller.init_weights()
    plain = MODELS.build(copy.deepcopy(model_cfg.student))
    plain.init_weights()
    plain.load_state_dict(distiller.student.state_dict())

    size = tuple(cfg.get('img_scale', (512, 512)))
    batch = cfg.train_dataloader.batch_size
    num_classes = 5
    torch.manual_seed(0)
    data = demo_mm_inputs(batch, [[3, size[1], size[0]]] * batch,
                          num_items=[20] * batch, num_classes=num_classes)
    opt_cfg = dict(type='OptimWrapper',
                   optimizer=dict(type='SGD', lr=1e-5, momentum=0.9))
    opt_d = build_optim_wrapper(distiller, opt_cfg)
    opt_p = build_optim_wrapper(plain, opt_cfg)
    distiller.train()
    plain.train()

    # feature shapes of the distilled levels
    with torch.no_grad():
        batch_data = distiller.data_preprocessor(data, True)
        distiller._recording = True
        distiller._teacher_features(batch_data['inputs'])
        distiller._recording = False
        shapes = [tuple(distiller._records[('teacher', n)].shape[-2:])
                  for n in distiller.pair_names]
        distiller._records = {}
        input_shape = tuple(batch_data['inputs'].shape[-2:])

    # 1. steps, alternating
    distiller.train_step(data, opt_d)
    plain.train_step(data, opt_p)
    t_plain, t_dist = [], []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        plain.train_step(data, opt_p)
        t_plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        distiller.train_step(data, opt_d)
        t_dist.append(time.perf_counter() - t0)
    plain_s, dist_s = statistics.median(t_plain), statistics.median(t_dist)

    print(f'config: {args.config}')
    print(f'machine: {os.cpu_count()} cores, torch threads '
          f'{torch.get_num_threads()}, torch {torch.__version__}')
    print(f'batch {batch} x {size[0]}x{size[1]}, 20 boxes/image, '
          f'{len(shapes)} distilled levels {shapes}, median of {args.iters}')
    print()
    print('| step | s/iter | ratio to plain |')
    print('|---|---|---|')
    print(f'| plain student | {plain_s:.3f} | 1.00 |')
    print(f'| FGD distillation | {dist_s:.3f} | {dist_s / plain_s:.2f} |')
    print()

    # 2./3. masks
    gen = torch.Generator().manual_seed(0)
    header = '| boxes/image | boxes/batch | masks, vectorised (ms) | ' \
        'share of FGD step |'
    sep = '|---|---|---|---|'
    if not args.no_loop_reference:
        header += ' masks, Python loop over boxes (ms) |'
        sep += '---|'
    print(header)
    print(sep)
    for n in args.boxes:
        gt = _boxes(batch, n, input_shape, gen)

        def vec():
            for s in shapes:
                fgd_masks(gt, input_shape, s)

        t_vec = _median(vec, args.iters)
        row = (f'| {n} | {n * batch} | {t_vec * 1e3:.1f} | '
               f'{100 * t_vec / dist_s:.2f} % |')
        if not args.no_loop_reference:
            def loop():
                for s in shapes:
                    _loop_masks(gt, input_shape, s)
            t_loop = _median(loop, max(1, min(args.iters, 2)))
            row += f' {t_loop * 1e3:.1f} |'
        print(row)


if __name__ == '__main__':
    main()
