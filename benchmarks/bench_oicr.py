"""OICR training-step and inference time against the number of proposals.

Usage:
    python benchmarks/bench_oicr.py [--config CFG] [--proposals 500 2000 5000]
        [--iters 3] [--batch N]

The model of ``--config`` is built without pre-trained weights. One batch
(``train_dataloader.batch_size`` images, or ``--batch``) is read through the
config's own train pipeline from the data set it names (real mosaics and
their generated proposals; ``tools/dataset_converters/generate_proposals.py``
must have been run). Each image's proposal set is brought to exactly ``P``
boxes: the generator's best ``P`` where it has that many, otherwise its set
plus jittered copies of its own boxes (so every row has the same images and
the same kind of boxes, only more of them). Per ``P``, side by side in one
process, alternating the rows: seconds per ``train_step`` (forward, backward,
optimiser step) and per ``test_step`` image, medians over ``--iters`` timed
rounds after one warm-up round. Ratios are to the first ``P``.
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

DEFAULT_CONFIG = ('configs/oicr/'
                  'oicr_r18-w32_adam-24e_1xb4_cervical-mosaic-bethesda-512.py')


def _with_count(boxes, count: int, img_shape, generator):
    """``Tensor[count, 4]``: the first ``count`` boxes, or them plus jittered
    copies of themselves, clipped to the image."""
    import torch
    if boxes.size(0) >= count:
        return boxes[:count]
    extra = count - boxes.size(0)
    src = boxes[torch.randint(boxes.size(0), (extra, ), generator=generator)]
    wh = (src[:, 2:] - src[:, :2]).clamp(min=1)
    shift = (torch.rand(extra, 2, generator=generator) - 0.5) * 0.3 * wh
    scale = 0.8 + 0.4 * torch.rand(extra, 1, generator=generator)
    ctr = (src[:, :2] + src[:, 2:]) / 2 + shift
    half = wh * scale / 2
    new = torch.cat([ctr - half, ctr + half], dim=1)
    h, w = img_shape[:2]
    new[:, 0::2] = new[:, 0::2].clamp(0, w)
    new[:, 1::2] = new[:, 1::2].clamp(0, h)
    return torch.cat([boxes, new], dim=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--proposals', type=int, nargs='+',
                        default=[500, 2000, 5000])
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--batch', type=int, default=None)
    args = parser.parse_args(argv)

    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    from cervdet.utils.launch import load_config

    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    batch = args.batch or cfg.train_dataloader.batch_size
    # Read the real images with every proposal the file holds.
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    for t in ds_cfg.pipeline:
        if t['type'] == 'LoadProposals':
            t['num_max_proposals'] = None
        if t['type'] == 'ProposalBroadcaster':
            t['transforms'] = [s for s in t['transforms']
                               if s['type'] != 'RandomFlip']
    dataset = DATASETS.build(ds_cfg)
    # images with at least one positive class: every loss term runs
    idx = [i for i in range(len(dataset))
           if dataset.get_data_info(i)['img_labels']][:batch]
    items = [dataset[i] for i in idx]

    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    gen = torch.Generator().manual_seed(0)

    def data_for(count: int):
        inputs, samples = [], []
        for it in items:
            ds = copy.deepcopy(it['data_samples'])
            boxes = _with_count(ds.proposals.bboxes, count, ds.img_shape,
                                gen)
            ds.proposals = InstanceData(bboxes=boxes,
                                        scores=torch.ones(count))
            inputs.append(it['inputs'])
            samples.append(ds)
        return dict(inputs=inputs, data_samples=samples)

    rows = {p: data_for(p) for p in args.proposals}
    times = {p: dict(train=[], test=[]) for p in args.proposals}

    def step(p, timed):
        model.train()
        t0 = time.perf_counter()
        model.train_step(rows[p], optim_wrapper)
        t_train = time.perf_counter() - t0
        model.eval()
        one = dict(inputs=rows[p]['inputs'][:1],
                   data_samples=rows[p]['data_samples'][:1])
        with torch.no_grad():
            t0 = time.perf_counter()
            model.test_step(one)
            t_test = time.perf_counter() - t0
        if timed:
            times[p]['train'].append(t_train)
            times[p]['test'].append(t_test)

    for r in range(args.iters + 1):
        for p in args.proposals:
            step(p, timed=r > 0)

    print(f'config: {args.config}')
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} with '
          f'{torch.get_num_threads()} threads, cuda available: '
          f'{torch.cuda.is_available()}; load average (1 min) '
          f'{os.getloadavg()[0]:.2f}')
    shape = items[0]['inputs'].shape
    print(f'batch {len(items)} x {shape[-2]}x{shape[-1]} (real mosaics, '
          f'{args.iters} timed rounds, medians)')
    print('| proposals/img | train s/iter | ratio | infer s/img | ratio |')
    print('|---|---|---|---|---|')
    base = None
    for p in args.proposals:
        tr = statistics.median(times[p]['train'])
        te = statistics.median(times[p]['test'])
        if base is None:
            base = (tr, te)
        print(f'| {p} | {tr:.3f} | {tr / base[0]:.2f} | {te:.3f} | '
              f'{te / base[1]:.2f} |')


if __name__ == '__main__':
    main()
