"""Train and test configs on the real CRIC fields over several seeds and
write one table of mean +- std (the evidence runs of the methods' READMEs).

Usage:
    python benchmarks/cric_seed_runs.py --suite retinanet-init \\
        [--seeds 0 1 2] [--work-dir work_dirs/evidence] [--threads 2]
    python benchmarks/cric_seed_runs.py --suite semi-dual-align
    python benchmarks/cric_seed_runs.py --suite semi-dual-align --smoke

Suites: ``retinanet-init`` (CPU RetinaNet from scratch vs DINO init),
``semi-dual-align`` (issue 19: supervised / dual alignment / Mean Teacher
at 25 and 50 % labeled fields, configs/semi_dual_align/*_cric-cervix-512.py;
its preparation step writes data/cric-cervix/annotations/semi/ with
``split_semi.py --seed 0`` once, the one fixed split of every row).
``roi-cls`` (issue 19: the global-local ROI classifier vs the paper's
Table 1 baselines on the CRIC fields as ROIs, configs/roi_cls/
*_cric-roi-fields.py; its preparation cuts data/cric-roi-fields with the
detection split and caches the DINO cell features once: it needs the
CRIC-tile DINO backbone data/pretrained/dino_r18-w32_cric-tiles.pth of
``bash tools/cric_dino_init.sh``, trained on tiles of the train + val
fields only).
``--smoke`` checks that every row runs end to end at a tiny budget (the
suite's ``smoke`` options: 2 iterations or 1 epoch, a few test fields, a
random cell encoder for roi-cls), seed 0 by default, under
``<work-dir>/smoke/`` (its numbers mean nothing).

Each row trains with ``tools/train.py`` (``randomness.seed`` = the seed,
``--work-dir <work>/<suite>/<row>/seed<k>``) and tests the last checkpoint
on the held-out test fields with ``tools/test.py`` (the suite's columns:
COCO AP and the point metric of ``configs/_base_/datasets/cric_cervix.py``
for detectors, ROI accuracy / AUC for roi-cls). A finished run
(``result.json`` present) is not run again and an interrupted training
resumes from its last checkpoint, so re-running the same command continues
the table. Prints and writes ``<work>/<suite>/table.md`` and
``results.json``: per row the mean +- std over the finished seeds of AP,
AP50, AR@100, abnormal recall at 1 and 4 false positives per image, and the
wall and CPU minutes of one training run (CPU = user + system time of the
child processes, which does not grow when other jobs share the cores).
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

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
_RET = 'configs/retinanet/retinanet_r18-w32_fpn_{}adam-12e_1xb4_cric-cervix-512.py'
#: (column, metric key, scale)
COLUMNS = [
    ('AP', 'coco/bbox_mAP', 100),
    ('AP50', 'coco/bbox_mAP_50', 100),
    ('AR@100', 'coco/bbox_AR@100', 100),
    ('abn. recall @1 FP/img', 'point/abnormal/sens@1fppi', 100),
    ('abn. recall @4 FP/img', 'point/abnormal/sens@4fppi', 100),
    ('abnormal AP (points)', 'point/abnormal/AP', 100),
]
_SEMI = ('configs/semi_dual_align/{}faster-rcnn_r18_fpn_sgd-cpu_{}_'
         'cric-cervix-512.py')
_ROI = 'configs/roi_cls/{}_cric-roi-fields.py'
_ROI_FULL = _ROI.format('global-local_r18-w32_att-blstm-vit_adamw-cpu')
_ROI_SMOKE_FEATS = '{suite_dir}/features'
#: a suite: rows of (label, config); ``prepare``: commands run once before
#: any row, each skipped when its ``creates`` file exists and refused with
#: ``hint`` when a ``requires`` file is missing (``smoke_prepare`` replaces
#: the steps marked ``smoke=False`` under ``--smoke``); ``smoke``: the
#: ``--cfg-options`` of ``--smoke`` (tiny budget, a few test fields;
#: ``test_*`` options also go to tools/test.py); ``columns``: the table's
#: (column, metric key, scale); ``{suite_dir}`` is replaced in commands and
#: options
SUITES = {
    # CPU RetinaNet from scratch vs from cervdet's DINO backbone (issue 14)
    'retinanet-init': dict(
        rows=[
            ('from scratch', _RET.format('')),
            ('DINO init (CRIC tiles)', _RET.format('dino-init_')),
        ],
        smoke=['train_cfg.max_epochs=1',
               'train_dataloader.dataset.indices=8', 'val_cfg=None',
               'val_dataloader=None', 'val_evaluator=None',
               'test_dataloader.dataset.indices=4']),
    # Chai et al. (issue 19): supervised / dual alignment / Mean Teacher at
    # 25 and 50 % labeled fields, one unlabeled pool (split_semi.py seed 0)
    'semi-dual-align': dict(
        rows=[
            ('supervised 25 %', _SEMI.format('', 'sup-25')),
            ('dual alignment 25 %', _SEMI.format('dual-align_', 'semi-25')),
            ('Mean Teacher 25 %', _SEMI.format('mean-teacher_', 'semi-25')),
            ('supervised 50 %', _SEMI.format('', 'sup-50')),
            ('dual alignment 50 %', _SEMI.format('dual-align_', 'semi-50')),
            ('Mean Teacher 50 %', _SEMI.format('mean-teacher_', 'semi-50')),
        ],
        prepare=[
            dict(cmd=['tools/dataset_converters/split_semi.py',
                      'data/cric-cervix/annotations/train.json', '--out-dir',
                      'data/cric-cervix/annotations/semi', '--seed', '0'],
                 creates='data/cric-cervix/annotations/semi/'
                 'train_unlabeled.json'),
        ],
        # + the paper's mAP over IoU 0.10:0.70 (Chai et al. Sec. 3.1)
        columns=COLUMNS + [('mAP IoU .10:.70 (paper)',
                            'iou_range/bbox_mAP_10_70', 100)],
        smoke=['train_cfg.max_iters=2', 'val_cfg=None',
               'val_dataloader=None', 'val_evaluator=None',
               'default_hooks.checkpoint.interval=2',
               'test_dataloader.dataset.indices=4']),
    # Shi et al. (issue 19): the global-local ROI classifier vs the paper's
    # Table 1 baselines on ROIs = the CRIC fields (label = worst marked
    # cell: NILM / LSIL / HSIL), the detection split's fields (--coco-dir),
    # the marked cells, one cached DINO cell-feature set for every row
    'roi-cls': dict(
        rows=[
            ('global-local (full)', _ROI_FULL),
            ('Att-BLSTM + ViT, no L_cell',
             _ROI.format('att-blstm-vit_r18-w32_adamw-cpu_no-cell-loss')),
            ('Att-BLSTM', _ROI.format('att-blstm_r18-w32_adamw-cpu')),
            ('attention MIL (CLAM)',
             _ROI.format('att-mil_r18-w32_adamw-cpu')),
            ('LSTM', _ROI.format('lstm_r18-w32_adamw-cpu')),
            ('GRU', _ROI.format('gru_r18-w32_adamw-cpu')),
            ('RNN', _ROI.format('rnn_r18-w32_adamw-cpu')),
        ],
        prepare=[
            dict(cmd=['tools/dataset_converters/cric_fields_to_roi_set.py',
                      '--coco-dir', 'data/cric-cervix/annotations',
                      '--img-dir', 'data/cric-cervix/images', '--out-dir',
                      'data/cric-roi-fields', '--no-progress'],
                 creates='data/cric-roi-fields/meta.json'),
            dict(cmd=['tools/roi_cls/extract_cell_features.py', _ROI_FULL,
                      '--split', 'all', '--no-progress'],
                 creates='data/cric-roi-fields/features/'
                 'r18-w32-dino-cric-tiles_64/cell_encoder.pth',
                 requires='data/pretrained/dino_r18-w32_cric-tiles.pth',
                 hint='the CRIC-tile DINO cell encoder of the CRIC ROI '
                 'configs (tiles of the train + val fields only): make it '
                 'with `bash tools/cric_dino_init.sh`',
                 smoke=False),
        ],
        # smoke: features of a random encoder, in the smoke folder
        smoke_prepare=[
            dict(cmd=['-c', 'import sys, torch; '
                      'from mmpretrain.models import ResNet; '
                      'torch.manual_seed(0); torch.save(ResNet(18, '
                      'stem_channels=32, base_channels=32, out_indices=(3, )'
                      ').state_dict(), sys.argv[1])',
                      '{suite_dir}/random_encoder.pth'],
                 creates='{suite_dir}/random_encoder.pth'),
            dict(cmd=['tools/roi_cls/extract_cell_features.py', _ROI_FULL,
                      '--split', 'all', '--no-progress', '--checkpoint',
                      '{suite_dir}/random_encoder.pth', '--out-dir',
                      _ROI_SMOKE_FEATS],
                 creates=_ROI_SMOKE_FEATS + '/cell_encoder.pth'),
        ],
        columns=[
            ('accuracy', 'roi/accuracy', 1),
            ('macro ROC-AUC', 'roi/macro_roc_auc', 1),
            ('macro F1', 'roi/macro_f1', 1),
            ('HSIL recall', 'roi/recall_HSIL', 1),
        ],
        smoke=['train_cfg.max_epochs=1', 'val_cfg=None',
               'val_dataloader=None', 'val_evaluator=None',
               'train_dataloader.dataset.indices=8',
               'train_dataloader.dataset.feature_cache=' + _ROI_SMOKE_FEATS,
               'test_dataloader.dataset.feature_cache=' + _ROI_SMOKE_FEATS]),
}


def run(cmd, log):
    """Run ``cmd`` from the project root into ``log``; (wall s, CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    with open(log, 'a') as f:
        proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f'failed ({proc.returncode}): {" ".join(map(str, cmd))}; '
                 f'see {log}')
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                before.ru_stime)
    return time.time() - t0, cpu


def newest_metrics(test_dir):
    """The metrics line tools/test.py's runner wrote last in ``test_dir``."""
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    if not logs:
        sys.exit(f'no metrics json under {test_dir}')
    with open(logs[-1]) as f:
        return json.loads(f.readline())


def checkpoints(out):
    """The ``epoch_*.pth`` (else ``iter_*.pth``) files of ``out``, oldest
    first."""
    for kind in ('epoch', 'iter'):
        ckpts = glob.glob(osp.join(out, f'{kind}_*.pth'))
        if ckpts:
            return sorted(ckpts, key=lambda p: int(p.rsplit('_', 1)[1][:-4]))
    return []


def one_run(py, cfg, work, seed, extra_opts=()):
    """Train + test one seed; returns its result dict (cached on disk)."""
    out = osp.join(work, f'seed{seed}')
    res_file = osp.join(out, 'result.json')
    if osp.isfile(res_file):
        with open(res_file) as f:
            return json.load(f)
    os.makedirs(out, exist_ok=True)
    opts = [f'randomness.seed={seed}', *extra_opts]
    train = [py, 'tools/train.py', cfg, '--work-dir', out, '--cfg-options',
             *opts]
    if osp.isfile(osp.join(out, 'last_checkpoint')) or checkpoints(out):
        train.insert(3, '--resume')
    wall, cpu = run(train, osp.join(out, 'train.log'))
    ckpts = checkpoints(out)
    if not ckpts:
        sys.exit(f'no checkpoint in {out} after training; see '
                 f'{osp.join(out, "train.log")}')
    test = [py, 'tools/test.py', cfg, ckpts[-1], '--work-dir',
            osp.join(out, 'test')]
    test_opts = [o for o in extra_opts if o.startswith('test_')]
    if test_opts:
        test += ['--cfg-options', *test_opts]
    run(test, osp.join(out, 'test.log'))
    result = dict(seed=seed, config=cfg, checkpoint=ckpts[-1],
                  train_wall_s=wall, train_cpu_s=cpu,
                  metrics=newest_metrics(osp.join(out, 'test')))
    with open(res_file + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(res_file + '.tmp', res_file)
    return result


def mean_std(values):
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or np.all(np.isnan(v)):
        return 'n/a'
    if len(v) == 1:
        return f'{v[0]:.1f} (1 seed)'
    return f'{np.nanmean(v):.1f} +- {np.nanstd(v, ddof=1):.1f}'


def table(rows_results, seeds, columns=COLUMNS):
    head = ['row', 'seeds'] + [c for c, _, _ in columns] + [
        'train min (wall / CPU)']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for label, results in rows_results:
        cells = [label, str(len(results))]
        for _, key, scale in columns:
            cells.append(mean_std([
                r['metrics'].get(key, float('nan')) * scale for r in results
            ]))
        if results:
            cells.append('{:.1f} / {:.1f}'.format(
                np.mean([r['train_wall_s'] for r in results]) / 60,
                np.mean([r['train_cpu_s'] for r in results]) / 60))
        else:
            cells.append('n/a')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--suite', choices=sorted(SUITES), required=True)
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='default 0 1 2 (0 with --smoke)')
    p.add_argument('--work-dir', default='work_dirs/evidence')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rows', nargs='*', default=None,
                   help='only these row numbers (0-based)')
    p.add_argument('--smoke', action='store_true',
                   help='check every row end to end at a tiny budget (2 '
                   'iterations or 1 epoch of 8 fields, 4 test fields, '
                   'seed 0 unless --seeds) under <work-dir>/smoke/; the '
                   'numbers mean nothing')
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.smoke else [0, 1, 2]
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    py = sys.executable
    if not osp.isfile(osp.join(ROOT, 'data/cric-cervix/annotations/test.json')):
        sys.exit('data/cric-cervix not found: build it with '
                 'tools/dataset_converters/cric_to_coco.py (see '
                 'docs/data_preparation.md)')
    suite = SUITES[args.suite]
    suite_dir = osp.join(ROOT, args.work_dir, *(['smoke'] if args.smoke
                                                else []), args.suite)
    rows = suite['rows']
    def fmt(text):
        return text.replace('{suite_dir}', suite_dir)

    extra = [fmt(o) for o in suite.get('smoke', [])] if args.smoke else []
    steps = suite.get('prepare', [])
    if args.smoke:
        steps = [s for s in steps if s.get('smoke', True)] + suite.get(
            'smoke_prepare', [])
    os.makedirs(suite_dir, exist_ok=True)
    for step in steps:
        if osp.isfile(osp.join(ROOT, fmt(step['creates']))):
            continue
        need = step.get('requires')
        if need and not osp.isfile(osp.join(ROOT, need)):
            sys.exit(f'{need} not found: {step["hint"]}')
        run([py, *map(fmt, step['cmd'])],
            osp.join(suite_dir, 'prepare.log'))
    todo = range(len(rows)) if args.rows is None else map(int, args.rows)
    todo = set(todo)
    rows_results = []
    # seed-major order: every row gets seed 0 before any row gets seed 1,
    # so an interrupted session leaves comparable rows
    done = {i: [] for i in range(len(rows))}
    for seed in args.seeds:
        for i, (label, cfg) in enumerate(rows):
            if i not in todo:
                continue
            work = osp.join(suite_dir, osp.splitext(osp.basename(cfg))[0])
            done[i].append(one_run(py, cfg, work, seed, extra))
            print(f'[{args.suite}] {label} seed {seed} done', flush=True)
    rows_results = [(label, done[i]) for i, (label, _) in enumerate(rows)]
    text = (f'Suite `{args.suite}`, seeds {args.seeds}, test fields of '
            'data/cric-cervix (CRIC Cervix, per-field split seed 0); mean '
            '+- sample std over seeds.\n\n' +
            table(rows_results, args.seeds, suite.get('columns', COLUMNS)))
    if args.smoke:
        text = ('SMOKE RUN (tiny budget: ' + ' '.join(extra) + '): these '
                'numbers mean nothing.\n\n' + text)
    print(text)
    os.makedirs(suite_dir, exist_ok=True)
    with open(osp.join(suite_dir, 'table.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(suite_dir, 'results.json'), 'w') as f:
        json.dump({label: res for label, res in rows_results}, f, indent=1)


if __name__ == '__main__':
    main()
