"""ROI classifier throughput: cached cell features vs from pixels.

Usage:
    python benchmarks/bench_roi_cls.py [--size cpu|paper] [--cells 50 200 1000]
        [--batch 2] [--repeats 3] [--threads N]

For every number of cells per ROI, side by side in one process, ROIs per
second of the global-local ROI classifier (Shi et al., ISBI 2022: Att-BLSTM +
CellViT + cross attention + cell branches) for

- ``train``: one ``train_step`` (data preprocessor, forward, ``loss_roi`` +
  ``loss_cell``, backward, SGD step, lr 3e-4 momentum 0.9 as in the paper);
- ``infer``: one ``test_step`` (``predict``, no gradients);

each in two modes:

- ``cached``: the ROI's cached features are read from an ``.npz`` (float16
  ``pooled [N, C]`` and ``maps [N, C, h, w]``, as
  ``tools/roi_cls/extract_cell_features.py`` writes them; the file is in the
  page cache after the warm-up) and converted to float32;
- ``pixels``: the ROI JPEG is read, every cell cropped and resized
  (``crop_and_resize``, one ``roi_align``), normalised by the data
  preprocessor and run through the frozen cell encoder (eval mode, no
  gradients, as in the configs), then the same model.

ROIs are real CRIC cell crops (``cric_crops_bethesda``, all six classes,
100 px) tiled on a square grid into one JPEG per ROI with known boxes (the
tile rectangles): ``ceil(sqrt(N))`` tiles a side, so 1000 cells make a
3200 px ROI. The batch holds ``--batch`` such ROIs.

Model sizes (``--size``):

- ``cpu``: ResNet-18 with stem and base 32 channels on 64 px cells (stage-4 map
  256 x 2 x 2), Att-BLSTM 256 -> hidden 128 (h_ROI 256), CellViT D 192 depth 2
  heads 3, cross attention d_k 256 (the model of ``configs/roi_cls/``
  ``global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py``);
- ``paper``: ResNet-50 on 224 px cells (2048 x 7 x 7), Att-BLSTM 2048 ->
  hidden 512 (h_ROI 1024), CellViT D 768 depth 12 heads 12, d_k 1024. Very
  slow on a CPU (about a minute per training step of 2 ROIs of 50 cells on
  one thread): only ``--cells 50`` unless ``--allow-slow``; use
  ``--repeats 1``.

Medians over ``--repeats`` timed steps after one warm-up step each: wall
ROIs/s (ratio = cached ROIs/s divided by pixels ROIs/s) and process CPU
seconds per step (all threads; less sensitive to other jobs than wall time).
Other jobs on the machine slow both modes: the load average is printed
before and after. On a shared machine use ``--threads 1`` (with
``OMP_NUM_THREADS=1``): two threads fighting other jobs for two cores made
steps several times slower and erratic in our runs, one thread was stable.
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

from cervdet.datasets.classes import BETHESDA6_CLASSES  # noqa: E402
from cervdet.datasets.classes import ROI_CLASSES as _ROI_CLASSES  # noqa: E402

CROP_CLASSES = BETHESDA6_CLASSES
ROI_CLASSES = list(_ROI_CLASSES)

SIZES = dict(
    cpu=dict(
        cell_size=64,
        encoder=dict(type='ResNet', depth=18, stem_channels=32,
                     base_channels=32, out_indices=(3, )),
        channels=256, map_size=2,
        global_branch=dict(type='AttBLSTM', in_channels=256, hidden_size=128),
        local_branch=dict(type='CellViT', in_channels=256, embed_dims=192,
                          depth=2, num_heads=3, map_size=2),
        cross_attention=dict(type='ROICrossAttention', d_k=256)),
    paper=dict(
        cell_size=224,
        encoder=dict(type='ResNet', depth=50, out_indices=(3, )),
        channels=2048, map_size=7,
        global_branch=dict(type='AttBLSTM', in_channels=2048,
                           hidden_size=512),
        local_branch=dict(type='CellViT', in_channels=2048, embed_dims=768,
                          depth=12, num_heads=12, map_size=7),
        cross_attention=dict(type='ROICrossAttention', d_k=1024)),
)


def model_cfg(size: str, pixels: bool) -> dict:
    """Config of the ROI classifier of ``size`` (pixel or cached mode)."""
    from cervdet.utils.constants import IMAGENET_MEAN, IMAGENET_STD
    s = SIZES[size]
    cfg = dict(
        type='GlobalLocalROIClassifier',
        data_preprocessor=dict(type='ROIBagDataPreprocessor', mean=list(IMAGENET_MEAN),
                               std=list(IMAGENET_STD), to_rgb=True),
        global_branch=copy.deepcopy(s['global_branch']),
        local_branch=copy.deepcopy(s['local_branch']),
        cross_attention=copy.deepcopy(s['cross_attention']),
        num_classes=3, class_names=ROI_CLASSES,
        cell_branches=dict(ratio=0.1, rule='shi', loss_weight=0.25))
    if pixels:
        cfg['cell_encoder'] = copy.deepcopy(s['encoder'])
        cfg['freeze_cell_encoder'] = True
    return cfg


def tile_roi(crop_paths, n: int, rng, tile: int = 100):
    """Tile ``n`` random real crops into one square ROI.

    Returns:
        tuple: uint8 BGR ``[g * tile, g * tile, 3]`` image
        (``g = ceil(sqrt(n))``, background glass-white) and float32 ``[n, 4]``
        xyxy boxes (the tiles).
    """
    import cv2
    import numpy as np
    g = int(np.ceil(np.sqrt(n)))
    img = np.full((g * tile, g * tile, 3), 235, np.uint8)
    k = np.arange(n)
    x0, y0 = (k % g) * tile, (k // g) * tile
    picks = rng.integers(len(crop_paths), size=n)
    for i, p in enumerate(picks):  # building the ROI, not timed
        crop = cv2.imread(str(crop_paths[p]))
        img[y0[i]:y0[i] + tile, x0[i]:x0[i] + tile] = cv2.resize(
            crop, (tile, tile), interpolation=cv2.INTER_AREA)
    boxes = np.stack([x0, y0, x0 + tile, y0 + tile], 1).astype(np.float32)
    return img, boxes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='cpu')
    parser.add_argument('--cells', type=int, nargs='+',
                        default=[50, 200, 1000])
    parser.add_argument('--batch', type=int, default=2,
                        help='ROIs per step')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s)')
    parser.add_argument('--crop-root', default=osp.join(
        osp.dirname(osp.abspath(__file__)), '..', '..', 'shared', 'data',
        'cric_crops_bethesda'))
    parser.add_argument('--allow-slow', action='store_true',
                        help='allow --size paper with more than 50 cells')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.size == 'paper' and max(args.cells) > 50 and not args.allow_slow:
        parser.error('--size paper takes minutes per step on a CPU: use '
                     '--cells 50 --repeats 1 (or --allow-slow)')
    if args.repeats < 1 or args.batch < 1 or min(args.cells) < 1:
        parser.error('--repeats, --batch and --cells must be >= 1')

    from pathlib import Path

    import cv2
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import cervdet  # noqa: F401  (registers the ROI classifier)
    from cervdet.datasets.transforms import crop_and_resize
    from cervdet.utils.constants import IMAGENET_MEAN, IMAGENET_STD

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    crop_root = Path(args.crop_root).resolve()
    crop_paths = sorted(p for c in CROP_CLASSES
                        for p in (crop_root / c).glob('*.png'))
    if not crop_paths:
        sys.exit(f'no crops under {crop_root}/<class>/*.png; pass '
                 '--crop-root (the shared cric_crops_bethesda)')
    size = SIZES[args.size]
    torch.manual_seed(args.seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pix_model = MODELS.build(model_cfg(args.size, pixels=True))
        cached_model = MODELS.build(model_cfg(args.size, pixels=False))
    cached_model.load_state_dict(
        {k: v for k, v in pix_model.state_dict().items()
         if not k.startswith('cell_encoder.')})
    encoder = pix_model.cell_encoder
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tmp = tempfile.mkdtemp(prefix='bench_roi_cls_')
    rng = np.random.default_rng(args.seed)
    S = size['cell_size']

    def make_rois(n):
        """``--batch`` ROI JPEGs of ``n`` cells with their feature caches."""
        rois = []
        for b in range(args.batch):
            img, boxes = tile_roi(crop_paths, n, rng)
            path = osp.join(tmp, f'roi_{n}_{b}.jpg')
            cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            crops = crop_and_resize(cv2.imread(path), boxes, S)
            with torch.no_grad():  # the feature cache (not timed)
                maps = torch.cat([
                    encoder((torch.from_numpy(c).flip(1).float() - mean)
                            / std)[-1]
                    for c in np.array_split(crops, max(1, len(crops) // 64))])
            cache = osp.join(tmp, f'roi_{n}_{b}.npz')
            np.savez(cache, pooled=maps.mean((2, 3)).numpy().astype(
                np.float16), maps=maps.numpy().astype(np.float16),
                boxes=boxes)
            rois.append(dict(img=path, cache=cache, boxes=boxes,
                             label=b % 3))
        return rois

    def sample(roi):
        return DataSample(metainfo=dict(img_path=roi['img'],
                                        num_cells=len(roi['boxes']))) \
            .set_gt_label(roi['label'])

    def batch(rois, mode):
        """What the dataloader gives (the pipeline's work is timed)."""
        items = []
        for roi in rois:
            if mode == 'cached':
                with np.load(roi['cache']) as z:
                    inputs = dict(
                        pooled=torch.from_numpy(z['pooled'].astype(
                            np.float32)),
                        maps=torch.from_numpy(z['maps'].astype(np.float32)))
            else:
                crops = crop_and_resize(cv2.imread(roi['img']), roi['boxes'],
                                        S)
                inputs = torch.from_numpy(crops)
            items.append(dict(inputs=inputs, data_samples=sample(roi)))
        return pseudo_collate(items)

    optims = {m: OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=3e-4,
        momentum=0.9)) for m, model in (('cached', cached_model),
                                        ('pixels', pix_model))}
    models = dict(cached=cached_model, pixels=pix_model)

    def step(phase, mode, rois):
        model = models[mode]
        t0, c0 = time.perf_counter(), time.process_time()
        data = batch(rois, mode)
        if phase == 'train':
            model.train()
            logs = model.train_step(data, optims[mode])
            assert torch.isfinite(logs['loss'])
        else:
            model.eval()
            with torch.no_grad():
                out = model.test_step(data)
            assert len(out) == len(rois)
        return time.perf_counter() - t0, time.process_time() - c0

    rows = []
    t_start = time.perf_counter()
    for n in args.cells:
        rois = make_rois(n)
        times = {(p, m): [] for p in ('train', 'infer')
                 for m in ('cached', 'pixels')}
        for r in range(args.repeats + 1):
            for key in times:  # alternating, side by side
                dt = step(*key, rois)
                if r > 0:
                    times[key].append(dt)
        for phase in ('train', 'infer'):
            wall = {m: statistics.median(t[0] for t in times[(phase, m)])
                    for m in ('cached', 'pixels')}
            cpu = {m: statistics.median(t[1] for t in times[(phase, m)])
                   for m in ('cached', 'pixels')}
            rows.append((n, phase, args.batch / wall['cached'],
                         args.batch / wall['pixels'],
                         wall['pixels'] / wall['cached'], cpu['cached'],
                         cpu['pixels'], cpu['pixels'] / cpu['cached']))
        print(f'... {n} cells done ({time.perf_counter() - t_start:.0f} s)',
              file=sys.stderr)
    load_after = os.getloadavg()

    enc = size['encoder']
    base = f' stem/base {enc["stem_channels"]}/{enc["base_channels"]}' \
        if 'base_channels' in enc else ''
    m = size['map_size']
    print(f'size: {args.size} (cells {S} px, encoder '
          f'{enc["type"]}-{enc["depth"]}{base}, features '
          f'{size["channels"]}x{m}x{m}); batch {args.batch} ROIs of real CRIC crops '
          'tiled on a grid')
    print(f'machine: {os.cpu_count()} cores, torch {torch.__version__} with '
          f'{torch.get_num_threads()} threads, OMP_NUM_THREADS='
          f'{os.environ.get("OMP_NUM_THREADS", "unset")}; load average '
          f'(1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/'
          f'{load_before[2]:.2f}, after {load_after[0]:.2f}/'
          f'{load_after[1]:.2f}/{load_after[2]:.2f}')
    print('| cells / ROI | step | cached ROIs/s | pixels ROIs/s | '
          'ratio cached / pixels | cached CPU s / step | pixels CPU s / '
          'step | CPU ratio |')
    print('|---|---|---|---|---|---|---|---|')
    for n, phase, c, p, ratio, cc, cp, cratio in rows:
        print(f'| {n} | {phase} | {c:.3f} | {p:.3f} | {ratio:.1f} | '
              f'{cc:.2f} | {cp:.2f} | {cratio:.1f} |')
    print(f'({args.repeats} timed steps each after one warm-up, medians; '
          f'total {time.perf_counter() - t_start:.0f} s)')
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
