"""CPU ablation of the PCN distillation (Table 2 of Fei et al.) on the 512 mosaics.

Usage:
    python benchmarks/pcn_cpu_ablation.py [--mosaic data/cervical-mosaic-bethesda-512]
        [--work-dir work_dirs/pcn_cpu_ablation] [--threads 2]

Runs the three stages with the shipped CPU configs, each with the tools users
run (``tools/train.py``, ``tools/test.py``, the patch builder):

1. stage 1: ``configs/retinanet/retinanet_r18-w32_fpn_adam-20e_1xb4_...-512.py``;
2. stage 2: patches (64 px) from the mosaic train/val/test splits, then
   ``configs/pcn_retinanet/pcn_resnet18-w32_gap_adam-12e_1xb32_...-512.py``,
   tested on the patch test split (accuracy, ROC-AUC);
3. stage 3: the four ablation rows from the same stage-1 checkpoint with the
   same number of iterations (baseline fine-tuning, +rank, +RCC, +both),
   each tested on the mosaic test split (COCO bbox AP).

Prints wall and CPU time (user + system of the child processes) of every
training run and the test metrics; a stage whose output exists is not run
again (re-running continues an interrupted ablation).
"""
import argparse
import glob
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
STAGE1 = ('configs/retinanet/'
          'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py')
STAGE2 = ('configs/pcn_retinanet/'
          'pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512.py')
_DATA = 'cervical-mosaic-bethesda-512.py'
ROWS = [
    ('RetinaNet (fine-tuned, no PCN)',
     f'configs/pcn_retinanet/retinanet_r18-w32_fpn_ft-adam-6e_1xb4_{_DATA}'),
    ('+ ranking loss',
     f'configs/pcn_retinanet/pcn-retinanet_r18-w32_fpn_rank_ft-adam-6e_1xb4_{_DATA}'),
    ('+ RCC loss',
     f'configs/pcn_retinanet/pcn-retinanet_r18-w32_fpn_rcc_ft-adam-6e_1xb4_{_DATA}'),
    ('+ both (PCN distillation)',
     'configs/pcn_retinanet/'
     f'pcn-retinanet_r18-w32_fpn_rank-rcc_ft-adam-6e_1xb4_{_DATA}'),
]


def name_of(config):
    return osp.splitext(osp.basename(config))[0]


def run(cmd, log):
    """Run ``cmd`` from the project root, output to ``log``.

    Returns:
        tuple: ``(wall seconds, CPU seconds)``; CPU = user + system time of
        the finished child processes (all its threads), which does not grow
        when other programs share the cores.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    with open(log, 'w') as f:
        proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f'failed ({proc.returncode}): {" ".join(map(str, cmd))}; see {log}')
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.time() - t0, cpu


def last_metrics(work_dir):
    """Metrics line of the newest tools/test.py run in ``work_dir``."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    with open(logs[-1]) as f:
        return json.loads(f.readline())


def data_overrides(mosaic):
    root = osp.abspath(mosaic).rstrip('/') + '/'
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={root}annotations/val.json',
        f'test_evaluator.ann_file={root}annotations/test.json',
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mosaic', default='data/cervical-mosaic-bethesda-512')
    p.add_argument('--work-dir', default='work_dirs/pcn_cpu_ablation')
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args(argv)
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    py = sys.executable
    work = osp.abspath(osp.join(ROOT, args.work_dir))
    mosaic = osp.abspath(osp.join(ROOT, args.mosaic))
    if not osp.isfile(osp.join(mosaic, 'annotations', 'test.json')):
        sys.exit(f'{mosaic} has no annotations/test.json: build it with '
                 'tools/dataset_converters/build_mosaic.py --preset 512')
    os.makedirs(work, exist_ok=True)
    times = {}
    data = data_overrides(mosaic)

    # stage 1
    s1 = osp.join(work, name_of(STAGE1))
    s1_ckpt = osp.join(s1, 'epoch_20.pth')
    if not osp.isfile(s1_ckpt):
        times['stage 1'] = run([py, 'tools/train.py', STAGE1, '--work-dir', s1,
                                '--force-overwrite', '--cfg-options',
                                'train_dataloader.num_workers=0',
                                'train_dataloader.persistent_workers=False',
                                'val_dataloader.num_workers=0',
                                'val_dataloader.persistent_workers=False',
                                *data], osp.join(work, 'stage1.log'))
    # stage 2: patches, PCN, its test
    patches = osp.join(work, 'pcn-patches-64')
    if not osp.isfile(osp.join(patches, 'meta.json')):
        times['patches'] = run([py, 'tools/dataset_converters/build_pcn_patches.py',
                                '--coco-root', mosaic, '--out-dir', patches,
                                '--patch-size', 64, '--overwrite'],
                               osp.join(work, 'patches.log'))
    s2 = osp.join(work, name_of(STAGE2))
    s2_ckpt = osp.join(s2, 'epoch_12.pth')
    pcn_data = [f'{k}.dataset.data_root={patches}/' for k in
                ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    pcn_data += [f'{k}.{a}' for k in ('train_dataloader', 'val_dataloader',
                                      'test_dataloader')
                 for a in ('num_workers=0', 'persistent_workers=False')]
    if not osp.isfile(s2_ckpt):
        times['stage 2'] = run([py, 'tools/train.py', STAGE2, '--work-dir', s2,
                                '--force-overwrite', '--cfg-options', *pcn_data],
                               osp.join(work, 'stage2.log'))
    run([py, 'tools/test.py', STAGE2, s2_ckpt, '--work-dir',
         osp.join(s2, 'test'), '--cfg-options', *pcn_data],
        osp.join(work, 'stage2_test.log'))
    pcn_metrics = last_metrics(osp.join(s2, 'test'))

    # stage 3: the four rows
    results = []
    for label, cfg in ROWS:
        out = osp.join(work, name_of(cfg))
        ckpt = osp.join(out, 'epoch_6.pth')
        extra = [f'load_from={s1_ckpt}']
        if 'pcn-retinanet' in cfg:
            extra.append(f'model.pcn_checkpoint={s2_ckpt}')
        common = ['train_dataloader.num_workers=0',
                  'train_dataloader.persistent_workers=False',
                  'test_dataloader.num_workers=0',
                  'test_dataloader.persistent_workers=False']
        if not osp.isfile(ckpt):
            times[label] = run([py, 'tools/train.py', cfg, '--work-dir', out,
                                '--force-overwrite', '--cfg-options', *data,
                                *extra, *common],
                               osp.join(work, name_of(cfg) + '.log'))
        run([py, 'tools/test.py', STAGE1, ckpt, '--work-dir',
             osp.join(out, 'test'), '--cfg-options', *data, *common],
            osp.join(work, name_of(cfg) + '_test.log'))
        results.append((label, last_metrics(osp.join(out, 'test'))))

    print('PCN (stage 2) on the patch test split: ' + ', '.join(
        f'{k} {v:.2f}' for k, v in pcn_metrics.items()
        if k in ('accuracy/top1', 'pcn/roc_auc')))
    print('wall / CPU seconds: ' + ', '.join(
        f'{k} {w:.0f} / {c:.0f}' for k, (w, c) in times.items()))
    print(f'{"row":34s} {"mAP":>6s} {"mAP_50":>7s} {"mAP_75":>7s} {"AR@100":>7s}')
    for label, m in results:
        ar = m.get('coco/bbox_AR@100', float('nan'))
        print(f'{label:34s} {m["coco/bbox_mAP"]:6.3f} '
              f'{m["coco/bbox_mAP_50"]:7.3f} {m["coco/bbox_mAP_75"]:7.3f} '
              f'{ar:7.3f}')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(dict(pcn=pcn_metrics, rows=dict(results), times=times), f,
                  indent=1)


if __name__ == '__main__':
    main()
