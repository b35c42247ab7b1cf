"""Train and test configs on the real CRIC fields over several seeds and
write one table of mean +- std (the evidence runs of the methods' READMEs).

Usage:
    python benchmarks/cric_seed_runs.py --suite retinanet-init \\
        [--seeds 0 1 2] [--work-dir work_dirs/evidence] [--threads 2]
    python benchmarks/cric_seed_runs.py --suite semi-dual-align
    python benchmarks/cric_seed_runs.py --suite semi-dual-align --smoke
    python benchmarks/cric_seed_runs.py --suite slide-screening \
        [--det-work-dir work_dirs/evidence]
    python benchmarks/cric_seed_runs.py --suite pcn --threads 1

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
``slide-screening`` (issue 19: the CRIC fields as small slides, positive
= any abnormal marked cell, negative = NILM-only; its preparation writes
``<work>/slide-screening/fields/``: ``labels/<split>.csv`` (``slide,label``)
and the fields as links, one folder per reading resolution, and
``counts.json``): per seed k, ``tools/slide_infer.py`` screens every field
with seed k's last checkpoint of the ``retinanet-init`` suite (from
``--det-work-dir``) at its 512x380 scale into ``detect/seed<k>/``; the
rows are the max cell score (baseline) and top-10 mean (no training) and
attention MIL trained with seed k on the training fields' bags
(configs/slide_screening/, last of 10 epochs), all scored by
``tools/slide/eval_slides.py`` on the test fields (field AUC, sensitivity
at specificity 0.9, top-10 hit rate) and on the val + test fields pooled
(more negatives); minutes = the detection pass of the seed + the row.
``pcn`` (issue 19: Fei et al.'s Table 2 rows on the CRIC fields: the
CPU RetinaNet of ``retinanet-init`` (from scratch, seed k's checkpoint for
seed k: run that suite first, same ``--work-dir``) fine-tuned 2 epochs
without the PCN / with the ranking loss / the RCC loss / both,
configs/pcn_retinanet/*_cric-cervix-512.py; its preparation cuts the PCN
patches of the train and val fields once (test fields forbidden) and trains
the CPU PCN once,
configs/pcn_retinanet/pcn_resnet18-w32_gap_adam-3e_1xb32_cric-patches-64.py).
``ld-wsccd`` (issue 19: Yin et al.'s Table 4 rows, SSD / SSD + LDM /
SSD + MIL detector / full, in CPU size on the CRIC fields,
configs/ld_wsccd/*_adam-24e_1xb4_cric-cervix-384.py, 24 epochs each; its
preparation trains the CPU teacher once, seed 0,
configs/fgd/teachers/retinanet_r18_fpn-128_adam-20e_1xb4_cric-cervix-384.py;
CorLoc beside AP).
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
# {method prefix}, {batch: 1xb2 supervised, 1xb4 = 2 labeled + 2 unlabeled},
# {labeled split}
_SEMI = ('configs/semi_dual_align/{}faster-rcnn_r18-w32_fpn_sgd-600it_{}_{}_'
         'cric-cervix-512.py')
_ROI = 'configs/roi_cls/{}_cric-roi-fields.py'
_ROI_FULL = _ROI.format('global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4')
_ROI_SMOKE_FEATS = '{suite_dir}/features'
_PCN = 'configs/pcn_retinanet/pcn_resnet18-w32_gap_adam-3e_1xb32_cric-patches-64.py'
_PCN_CKPT = '{suite_dir}/pcn/epoch_3.pth'
_PCN_FT = 'configs/pcn_retinanet/{}_ft-adam-2e_1xb4_cric-cervix-512.py'
_PCN_OPTS = ['model.pcn_checkpoint=' + _PCN_CKPT]
_PCN_TRAIN = ['tools/train.py', _PCN, '--work-dir', '{suite_dir}/pcn']
_LD = 'configs/ld_wsccd/ld-wsccd_r18-w32_{}_adam-24e_1xb4_cric-cervix-384.py'
_LD_TEACHER = ('configs/fgd/teachers/'
               'retinanet_r18_fpn-128_adam-20e_1xb4_cric-cervix-384.py')
_LD_TEACHER_CKPT = '{suite_dir}/teacher/epoch_20.pth'
_LD_TEACHER_TRAIN = ['tools/train.py', _LD_TEACHER, '--work-dir',
                     '{suite_dir}/teacher', '--cfg-options',
                     'randomness.seed=0']
_LD_OPTS = ['model.teacher_ckpt=' + _LD_TEACHER_CKPT]
#: a suite: rows of (label, config[, row options]); ``options``: the
#: ``--cfg-options`` of every row (``{seed}`` = the run's seed; row options
#: follow them); ``seed_requires``: (file, hint): a file every seed needs,
#: checked before any training unless ``--smoke``; ``prepare``: commands
#: run once before any row, each skipped when its ``creates`` file exists,
#: refused with ``hint`` when a ``requires`` file is missing, and given
#: ``--resume`` when its ``resume`` folder holds a checkpoint of an
#: interrupted training (``smoke_prepare`` replaces the steps marked
#: ``smoke=False`` under ``--smoke``); ``smoke``: the ``--cfg-options`` of
#: ``--smoke`` (tiny budget, a few test fields; ``test_*`` and ``model.*``
#: options, of the suite or the row, also go to tools/test.py);
#: ``columns``: the table's (column, metric key, scale);
#: ``{suite_dir}`` (this suite's output folder) and ``{work_dir}``
#: (``--work-dir``, never its smoke folder) are replaced in commands, files
#: and options
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
            ('supervised 25 %', _SEMI.format('', '1xb2', 'sup-25')),
            ('dual alignment 25 %', _SEMI.format('dual-align_', '1xb4', 'semi-25')),
            ('Mean Teacher 25 %', _SEMI.format('mean-teacher_', '1xb4', 'semi-25')),
            ('supervised 50 %', _SEMI.format('', '1xb2', 'sup-50')),
            ('dual alignment 50 %', _SEMI.format('dual-align_', '1xb4', 'semi-50')),
            ('Mean Teacher 50 %', _SEMI.format('mean-teacher_', '1xb4', 'semi-50')),
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
             _ROI.format('att-blstm-vit_r18-w32_adamw-20e_1xb4_no-cell-loss')),
            ('Att-BLSTM', _ROI.format('att-blstm_r18-w32_adamw-20e_1xb4')),
            ('attention MIL (CLAM)',
             _ROI.format('att-mil_r18-w32_adamw-20e_1xb4')),
            ('LSTM', _ROI.format('lstm_r18-w32_adamw-20e_1xb4')),
            ('GRU', _ROI.format('gru_r18-w32_adamw-20e_1xb4')),
            ('RNN', _ROI.format('rnn_r18-w32_adamw-20e_1xb4')),
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
    # issue 19: the CRIC fields as small slides (positive = any abnormal
    # marked cell), screened by the CPU RetinaNet of ``retinanet-init``
    # (seed k's last checkpoint for seed k, read from ``--det-work-dir``),
    # scored by the max / top-10 mean of the cell scores (no training: the
    # spread is the detector's) and by attention MIL trained with seed k on
    # the training fields' bags; last MIL checkpoint of 10 epochs
    'slide-screening': dict(
        runner='slide',
        rows=[
            ('max cell score (baseline)', 'max'),
            ('top-10 mean', 'topk_mean'),
            ('attention MIL, top-32 cells',
             'configs/slide_screening/attn-mil_topk-32_cervical-fields.py'),
        ],
        detector=dict(
            config=_RET.format(''), work='retinanet-init/' +
            osp.splitext(osp.basename(_RET.format('')))[0]),
        # the detector reads the 688x510 fields at 512x380: plain images
        # get mpp = 688 / width (native 1376 px fields: 0.5), read at
        # 688 / 512; 380 px tiles (a square tile of the field would be
        # shrunk to 380x380 by the test pipeline), 2 per field
        ref_width=688,
        infer_opts=['--target-mpp', str(688 / 512), '--tile-size', '380',
                    '--overlap', '128', '--score-thr', '0.05', '--top-k',
                    '32', '--topk-mean-k', '10', '--no-mask',
                    '--num-workers', '0', '--no-parquet', '--no-progress'],
        columns=[
            ('field AUC', 'slide/auc', 100),
            ('sens. @ spec. 0.9', 'slide/sens_at_spec90', 100),
            ('top-10 hit rate', 'slide/top10_hit_rate', 100),
            ('field AUC, val+test fields', 'pooled/auc', 100),
            ('sens. @ spec. 0.9, val+test', 'pooled/sens_at_spec90', 100),
        ],
        time_column='min / seed (wall / CPU): detection of all fields + row',
        # fields per split (half negatives) and 1 MIL epoch
        smoke_fields=dict(train=8, val=4, test=4),
        smoke=['train_cfg.max_epochs=1']),
    # Fei et al. (issue 19): Table 2 rows, each the seed-k retinanet-init
    # detector (from scratch) fine-tuned 2 epochs at an equal budget; one
    # PCN trained on the train fields' patches serves the three PCN rows
    'pcn': dict(
        rows=[
            ('baseline (same fine-tuning, no PCN)',
             _PCN_FT.format('retinanet_r18-w32_fpn')),
            ('+ranking', _PCN_FT.format('pcn-retinanet_r18-w32_fpn_rank'),
             _PCN_OPTS),
            ('+RCC', _PCN_FT.format('pcn-retinanet_r18-w32_fpn_rcc'),
             _PCN_OPTS),
            ('+ranking +RCC',
             _PCN_FT.format('pcn-retinanet_r18-w32_fpn_rank-rcc'),
             _PCN_OPTS),
        ],
        options=['load_from={work_dir}/retinanet-init/' +
                 osp.splitext(osp.basename(_RET.format('')))[0] +
                 '/seed{seed}/epoch_12.pth'],
        seed_requires=(
            '{work_dir}/retinanet-init/' +
            osp.splitext(osp.basename(_RET.format('')))[0] +
            '/seed{seed}/epoch_12.pth',
            'the start detector of this seed: run `--suite retinanet-init '
            '--rows 0 --seeds <seed>` with the same --work-dir first'),
        prepare=[
            dict(cmd=['tools/dataset_converters/build_pcn_patches.py',
                      '--coco-root', 'data/cric-cervix', '--splits', 'train',
                      'val', '--img-dir', 'data/cric-cervix/images',
                      '--forbid-fields',
                      'data/cric-cervix/annotations/test.json', '--out-dir',
                      'data/cric-pcn-patches-64', '--patch-size', '64'],
                 creates='data/cric-pcn-patches-64/meta.json'),
            dict(cmd=_PCN_TRAIN, creates=_PCN_CKPT, resume='{suite_dir}/pcn',
                 smoke=False),
        ],
        # smoke: a PCN of 3 one-step epochs (same checkpoint name)
        smoke_prepare=[
            dict(cmd=_PCN_TRAIN + [
                '--cfg-options', 'train_dataloader.dataset.indices=32',
                'val_dataloader.dataset.indices=32'], creates=_PCN_CKPT,
                 resume='{suite_dir}/pcn'),
        ],
        # smoke: a random detector (no retinanet-init checkpoint needed)
        smoke=['load_from=None', 'train_cfg.max_epochs=1',
               'train_dataloader.dataset.indices=8',
               'test_dataloader.dataset.indices=4']),
    # Yin et al. (issue 19): Table 4 rows in CPU size on the CRIC fields
    # (image labels = each field's set of classes, WeakCocoDataset; every
    # field keeps its boxes, configs/ld_wsccd/README.md item 1), one CPU
    # teacher trained once (seed 0) for the two distilled rows; COCO AP,
    # the point metric and CorLoc on the test fields
    'ld-wsccd': dict(
        rows=[
            ('SSD', _LD.format('ssd')),
            ('SSD + LDM', _LD.format('ssd-ldm'), _LD_OPTS),
            ('SSD + MIL detector', _LD.format('ssd-mil')),
            ('LD-WSCCD (SSD + LDM + MIL)', _LD.format('ssd-ldm-mil'),
             _LD_OPTS),
        ],
        prepare=[
            dict(cmd=_LD_TEACHER_TRAIN, creates=_LD_TEACHER_CKPT,
                 resume='{suite_dir}/teacher', smoke=False),
        ],
        # smoke: the teacher's 20 epochs on 4 fields (same checkpoint name)
        smoke_prepare=[
            dict(cmd=_LD_TEACHER_TRAIN + [
                'train_dataloader.dataset.indices=4', 'val_cfg=None',
                'val_dataloader=None', 'val_evaluator=None'],
                 creates=_LD_TEACHER_CKPT, resume='{suite_dir}/teacher'),
        ],
        columns=COLUMNS + [('CorLoc', 'corloc/mean', 100)],
        smoke=['train_cfg.max_epochs=1', 'val_cfg=None',
               'val_dataloader=None', 'val_evaluator=None',
               'train_dataloader.dataset.indices=8',
               'test_dataloader.dataset.indices=4']),
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
    # the test dataloader's options and the model's (e.g. a distiller's
    # teacher checkpoint, which the model needs to be built)
    test_opts = [o for o in extra_opts if o.startswith(('test_', 'model.'))]
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


SPLITS = ('train', 'val', 'test')


def field_slides(coco_file, normal_classes=('NILM', )):
    """The fields of a COCO split as small slides.

    Returns:
        list[dict]: per image (file order) ``slide`` (file name stem),
        ``file_name``, ``width`` and ``label``: ``positive`` when the field
        has a marked cell of a category not in ``normal_classes``, else
        ``negative``.
    """
    with open(coco_file) as f:
        coco = json.load(f)
    normal = {c.lower() for c in normal_classes}
    abnormal = {c['id'] for c in coco['categories']
                if c['name'].lower() not in normal}
    pos = {a['image_id'] for a in coco['annotations']
           if a['category_id'] in abnormal}
    return [dict(slide=osp.splitext(osp.basename(i['file_name']))[0],
                 file_name=i['file_name'], width=int(i['width']),
                 label='positive' if i['id'] in pos else 'negative')
            for i in coco['images']]


def smoke_subset(fields, n):
    """``n`` fields, half negative (as many as exist), in file order."""
    neg = [f for f in fields if f['label'] == 'negative'][:n // 2]
    pos = [f for f in fields if f['label'] == 'positive'][:n - len(neg)]
    keep = {f['slide'] for f in neg + pos}
    return [f for f in fields if f['slide'] in keep]


def prepare_fields(suite_dir, suite, smoke=False):
    """``<suite_dir>/fields/``: per split ``labels/<split>.csv``
    (``slide,label``), the fields as symlinks grouped by width
    (``<split>/w<width>/``, one reading resolution each) and
    ``counts.json`` (fields, positive, negative per split). Written once."""
    root = osp.join(suite_dir, 'fields')
    done = osp.join(root, 'counts.json')
    if osp.isfile(done):
        with open(done) as f:
            return json.load(f)
    counts = {}
    for split in SPLITS:
        fields = field_slides(osp.join(
            ROOT, f'data/cric-cervix/annotations/{split}.json'))
        if smoke:
            fields = smoke_subset(fields, suite['smoke_fields'][split])
        os.makedirs(osp.join(root, 'labels'), exist_ok=True)
        with open(osp.join(root, 'labels', f'{split}.csv'), 'w') as f:
            f.write('slide,label\n')
            f.writelines(f'{x["slide"]},{x["label"]}\n' for x in fields)
        for x in fields:
            d = osp.join(root, split, f'w{x["width"]}')
            os.makedirs(d, exist_ok=True)
            link = osp.join(d, osp.basename(x['file_name']))
            if not osp.lexists(link):
                os.symlink(osp.realpath(osp.join(
                    ROOT, 'data/cric-cervix/images', x['file_name'])), link)
        npos = sum(x['label'] == 'positive' for x in fields)
        counts[split] = dict(fields=len(fields), positive=npos,
                             negative=len(fields) - npos)
    with open(done, 'w') as f:
        json.dump(counts, f, indent=1)
    return counts


def detect_fields(py, suite_dir, suite, seed, det_work):
    """Screen every split's fields with detector seed ``seed``
    (``tools/slide_infer.py``, which skips finished fields) into
    ``<suite_dir>/detect/seed<k>/<split>/`` and lay out the bag folder of
    the MIL config there (``bags/<slide>`` links, ``labels/``). Returns
    ``detect.json``: wall / CPU seconds of the pass (cached)."""
    out = osp.join(suite_dir, 'detect', f'seed{seed}')
    res_file = osp.join(out, 'detect.json')
    if osp.isfile(res_file):
        with open(res_file) as f:
            return json.load(f)
    det = suite['detector']
    ckpts = checkpoints(osp.join(det_work, det['work'], f'seed{seed}'))
    if not ckpts:
        sys.exit(f'no detector checkpoint under {det_work}/{det["work"]}/'
                 f'seed{seed}: run --suite retinanet-init first (or pass '
                 '--det-work-dir)')
    os.makedirs(osp.join(out, 'bags'), exist_ok=True)
    wall = cpu = 0.
    fields = osp.join(suite_dir, 'fields')
    for split in SPLITS:
        for group in sorted(os.listdir(osp.join(fields, split))):
            mpp = suite['ref_width'] / int(group[1:])
            w, c = run([py, 'tools/slide_infer.py', det['config'], ckpts[-1],
                        osp.join(fields, split, group), '--out-dir',
                        osp.join(out, split), '--mpp', str(mpp),
                        *suite['infer_opts']], osp.join(out, 'detect.log'))
            wall, cpu = wall + w, cpu + c
        for name in os.listdir(osp.join(out, split)):
            link = osp.join(out, 'bags', name)
            if osp.isdir(osp.join(out, split, name)) and not osp.lexists(
                    link):
                os.symlink(osp.join('..', split, name), link)
    if osp.lexists(osp.join(out, 'labels')):
        os.remove(osp.join(out, 'labels'))
    os.symlink(osp.join('..', '..', 'fields', 'labels'),
               osp.join(out, 'labels'))
    result = dict(seed=seed, checkpoint=ckpts[-1], wall_s=wall, cpu_s=cpu)
    with open(res_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def eval_split(py, det_dir, split, source, out, log):
    """``tools/slide/eval_slides.py`` on one split: its metrics dict and
    (wall, CPU) seconds. ``source``: an aggregator name, or the MIL
    (config, checkpoint)."""
    how = (['--aggregator', source] if isinstance(source, str) else
           ['--mil-config', source[0], '--mil-checkpoint', source[1]])
    cost = run([py, 'tools/slide/eval_slides.py', osp.join(det_dir, split),
                '--labels', osp.join(det_dir, 'labels', f'{split}.csv'),
                *how, '--cell-gt',
                f'data/cric-cervix/annotations/{split}.json',
                '--normal-classes', 'NILM', '--topk', '10', '--out', out,
                '--force-overwrite'], log)
    with open(out) as f:
        return json.load(f), cost


def slide_run(py, suite, suite_dir, row, seed, det, extra_opts=()):
    """One row of the slide-screening suite for one seed (cached in
    ``<suite_dir>/<row>/seed<k>/result.json``)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from cervdet.evaluation.metrics.slide_screening_metric import screening_summary
    label, source = row
    name = source if '/' not in source else osp.splitext(
        osp.basename(source))[0]
    out = osp.join(suite_dir, name, f'seed{seed}')
    res_file = osp.join(out, 'result.json')
    if osp.isfile(res_file):
        with open(res_file) as f:
            return json.load(f)
    os.makedirs(out, exist_ok=True)
    det_dir = osp.join(suite_dir, 'detect', f'seed{seed}')
    wall = cpu = 0.
    if '/' in source:  # a MIL config: train on the train fields' bags
        with np.load(osp.join(det_dir, 'bags', sorted(os.listdir(
                osp.join(det_dir, 'bags')))[0], 'cells_topk.npz')) as bag:
            width = bag['feats'].shape[1]
        data = [f'{s}_dataloader.dataset.data_root={det_dir}/'
                for s in SPLITS]
        train = [py, 'tools/train.py', source, '--work-dir', out,
                 '--cfg-options', f'randomness.seed={seed}',
                 f'model.aggregator.in_channels={width}', *data,
                 *extra_opts]
        if checkpoints(out):
            train.insert(3, '--resume')
        wall, cpu = run(train, osp.join(out, 'train.log'))
        ckpts = checkpoints(out)
        if not ckpts:
            sys.exit(f'no checkpoint in {out}; see {out}/train.log')
        source = (osp.join(out, osp.basename(source)), ckpts[-1])
    evals = {}
    for split in ('val', 'test'):
        evals[split], (w, c) = eval_split(
            py, det_dir, split, source, osp.join(out, f'eval_{split}.json'),
            osp.join(out, 'eval.log'))
        wall, cpu = wall + w, cpu + c
    test = evals['test']
    pooled = [p for e in evals.values() for p in e['per_slide']]
    pool = screening_summary(np.array([p['positive'] for p in pooled]),
                             np.array([p['score'] for p in pooled]), 0.9)
    metrics = {
        'slide/auc': test['auc'],
        'slide/sens_at_spec90': test['sensitivity_at_spec']['0.9'],
        'slide/top10_hit_rate': test['top10_hit_rate'],
        'slide/triage_share': test['triage_share_at_full_sensitivity'],
        'pooled/auc': pool['auc'],
        'pooled/sens_at_spec90': pool['sensitivity'],
    }
    result = dict(
        seed=seed, row=label, source=source, metrics=metrics,
        test_fields=dict(positive=test['num_positive'],
                         negative=test['num_negative']),
        pooled_fields=dict(positive=pool['num_positive'],
                           negative=pool['num_negative']),
        detector=det['checkpoint'], row_wall_s=wall, row_cpu_s=cpu,
        detect_wall_s=det['wall_s'], detect_cpu_s=det['cpu_s'],
        train_wall_s=det['wall_s'] + wall, train_cpu_s=det['cpu_s'] + cpu)
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


def table(rows_results, seeds, columns=COLUMNS,
          time_column='train min (wall / CPU)'):
    head = ['row', 'seeds'] + [c for c, _, _ in columns] + [time_column]
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
    p.add_argument('--det-work-dir', default=None,
                   help='slide-screening: the --work-dir of the '
                   'retinanet-init suite whose seed k detector screens '
                   'the fields of seed k (default: --work-dir)')
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
    work_root = osp.join(ROOT, args.work_dir)

    def fmt(text, seed=None):
        text = text.replace('{suite_dir}', suite_dir).replace(
            '{work_dir}', work_root)
        return text if seed is None else text.replace('{seed}', str(seed))

    # before any preparation: a missing start is refused at once
    if 'seed_requires' in suite and not args.smoke:
        need, hint = suite['seed_requires']
        for seed in args.seeds:
            if not osp.isfile(fmt(need, seed)):
                sys.exit(f'{fmt(need, seed)} not found: {hint}')
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
        cmd = [py, *map(fmt, step['cmd'])]
        if step.get('resume') and checkpoints(fmt(step['resume'])):
            cmd.insert(3, '--resume')
        run(cmd, osp.join(suite_dir, 'prepare.log'))
    todo = range(len(rows)) if args.rows is None else map(int, args.rows)
    todo = set(todo)
    if suite.get('runner') == 'slide':
        counts = prepare_fields(suite_dir, suite, args.smoke)
        print(f'[{args.suite}] fields (positive / negative): ' + ', '.join(
            f'{k} {v["positive"]} / {v["negative"]}'
            for k, v in counts.items()), flush=True)
    rows_results = []
    # seed-major order: every row gets seed 0 before any row gets seed 1,
    # so an interrupted session leaves comparable rows
    done = {i: [] for i in range(len(rows))}
    for seed in args.seeds:
        for i, (label, cfg, *row_opts) in enumerate(rows):
            if i not in todo:
                continue
            if suite.get('runner') == 'slide':
                det = detect_fields(
                    py, suite_dir, suite, seed,
                    osp.join(ROOT, args.det_work_dir or args.work_dir))
                done[i].append(slide_run(py, suite, suite_dir, (label, cfg),
                                         seed, det, extra))
                print(f'[{args.suite}] {label} seed {seed} done', flush=True)
                continue
            work = osp.join(suite_dir, osp.splitext(osp.basename(cfg))[0])
            opts = [fmt(o, seed) for o in suite.get('options', []) + (
                row_opts[0] if row_opts else [])]
            done[i].append(one_run(py, cfg, work, seed, opts + extra))
            print(f'[{args.suite}] {label} seed {seed} done', flush=True)
    rows_results = [(row[0], done[i]) for i, row in enumerate(rows)]
    text = (f'Suite `{args.suite}`, seeds {args.seeds}, test fields of '
            'data/cric-cervix (CRIC Cervix, per-field split seed 0); mean '
            '+- sample std over seeds.\n\n' +
            table(rows_results, args.seeds, suite.get('columns', COLUMNS),
                  suite.get('time_column', 'train min (wall / CPU)')))
    if suite.get('runner') == 'slide':
        text += ('\n\nFields (positive = any abnormal marked cell / '
                 'negative = NILM-only): ' + ', '.join(
                     f'{k} {v["positive"]} / {v["negative"]}'
                     for k, v in counts.items()) + '. Top-10 hit rate: '
                 'share of positive test fields with a marked abnormal '
                 'cell among the 10 highest-scoring detected cells (IoU '
                 '>= 0.3 or centre inside; the detector\'s ranking, so '
                 'the same for every row of a seed).')
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
