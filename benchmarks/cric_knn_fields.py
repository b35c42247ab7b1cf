"""DINO k-NN on the CRIC cell crops split PER FIELD (issue 19): weighted F1
of frozen features, DINO on CRIC tiles vs random init, 3 seeds each.

Usage:
    python benchmarks/cric_knn_fields.py [--seeds 0 1 2] [--threads 1] \\
        [--work-dir work_dirs/evidence]
    python benchmarks/cric_knn_fields.py --smoke   # tiny DINO, few crops

Data: the real CRIC Bethesda crops (``../shared/data/cric_crops_bethesda``,
6 classes NILM ASC-US ASC-H LSIL HSIL SCC, 100x100 crops around marked
nuclei; the file name ``<stem>_<cell_id>.png`` gives the source field), each
assigned to the split of its field in ``data/cric-cervix/splits.csv`` (the
detection split of every issue-19 row, ``cric_to_coco.py`` seed 0). Bank =
the crops of the **train** fields, queries = the crops of the **test**
fields; ``k`` (of ``--topk``) is chosen on the **val** fields' crops (bank =
train) and only then applied to the test fields (nothing is chosen on the
test fields). Weighted k-NN of ``KNNMetric`` (cosine, votes
``exp(sim / 0.07)``), pooled stage-4 features of the half-width ResNet-18,
crops resized to ``--img-size`` (96) with ImageNet normalisation, as
``tools/ssl/knn_eval.py --img-size 96``.

Rows, one model per seed ``k``:

* ``DINO (CRIC tiles)``: ``configs/ssl/dino_resnet18-w32_sgd-6e_cric-tiles.py``
  (the model of ``tools/cric_dino_init.sh``: tiles of the train + val
  fields only, labels unused) trained with ``randomness.seed=k`` under
  ``<work>/knn-fields/dino_seed<k>/`` (one data-loader worker: the machine
  is shared), its teacher backbone converted with
  ``tools/ssl/convert_backbone.py`` (``backbone_teacher.pth``);
* ``random init``: the same backbone, ``torch.manual_seed(k)``.

Herlev (``../shared/data/herlev``, 7 classes, no fields), when present: the
within-set protocol of ``knn_eval.py`` (4 random stratified 75/25 splits,
split seed 0, mean over splits per model) at the ``k`` fixed in advance by
``--herlev-k`` (20, DINO's default; no selection on its test parts).

Every step is resumable: a finished DINO run, feature file or result is not
redone. Prints and writes ``<work>/knn-fields/table.md`` and
``results.json`` (mean +- sample std over the seeds; CPU minutes of one
DINO pre-training = user + system time of the child process).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from cric_seed_runs import run  # noqa: E402 (one subprocess runner)

DINO_CFG = 'configs/ssl/dino_resnet18-w32_sgd-6e_cric-tiles.py'
CLASSES = ('NILM', 'ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC')
ROWS = ('DINO (CRIC tiles)', 'random init')
#: the table's columns: (column, key of a result)
COLUMNS = [
    ('CRIC test fields weighted F1', 'cric_test_weighted_f1'),
    ('CRIC test fields accuracy', 'cric_test_accuracy'),
    ('CRIC test fields binary weighted F1', 'cric_test_binary_weighted_f1'),
    ('k (chosen on val fields)', 'k'),
    ('Herlev weighted F1', 'herlev_weighted_f1'),
]
SMOKE_DINO = ['train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=64',
              'default_hooks.checkpoint.interval=1']


def _dump(obj, path):
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(path + '.tmp', path)


def field_split(splits_csv):
    """``{field stem: split}`` of ``data/cric-cervix/splits.csv``."""
    with open(splits_csv) as f:
        return {osp.splitext(r['file_name'])[0]: r['split']
                for r in csv.DictReader(f)}


def crops_per_split(crop_root, splits, limit=None):
    """``{split: (files, labels)}`` of the crop set by source field; crops
    of fields outside the split file are dropped (counted in ``'unmatched'``).
    """
    out = {s: ([], []) for s in ('train', 'val', 'test')}
    unmatched = 0
    for c, name in enumerate(CLASSES):
        files = sorted(Path(crop_root, name).glob('*.png'))
        for f in files:
            stem = f.stem.rsplit('_', 1)[0]
            split = splits.get(stem)
            if split not in out:
                unmatched += 1
                continue
            out[split][0].append(f)
            out[split][1].append(c)
    res = {}
    for s, (files, labels) in out.items():
        labels = np.array(labels, dtype=np.int64)
        if limit:  # smoke: a few crops of every class
            keep = np.concatenate([np.flatnonzero(labels == c)[:limit]
                                   for c in range(len(CLASSES))])
            files, labels = [files[i] for i in keep], labels[keep]
        res[s] = (files, labels)
    res['unmatched'] = unmatched
    return res


def pretrain_dino(py, seed, out, smoke):
    """DINO on the CRIC tiles with ``randomness.seed=seed``; the teacher
    backbone file (``out/backbone_teacher.pth``) and the run's minutes."""
    backbone = osp.join(out, 'backbone_teacher.pth')
    info_file = osp.join(out, 'pretrain.json')
    if osp.isfile(backbone) and osp.isfile(info_file):
        with open(info_file) as f:
            return backbone, json.load(f)
    if not osp.isfile(osp.join(ROOT, 'data/cric-tiles/tiles.json')):
        sys.exit('data/cric-tiles not found: bash tools/cric_dino_init.sh '
                 'cuts it (train + val fields only)')
    os.makedirs(out, exist_ok=True)
    opts = [f'randomness.seed={seed}', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            *(SMOKE_DINO if smoke else [])]
    train = [py, 'tools/train.py', DINO_CFG, '--work-dir', out,
             '--cfg-options', *opts]
    if osp.isfile(osp.join(out, 'last_checkpoint')):
        train.insert(3, '--resume')
    wall, cpu = run(train, osp.join(out, 'pretrain.log'))
    epochs = 1 if smoke else 6
    run([py, 'tools/ssl/convert_backbone.py',
         osp.join(out, f'epoch_{epochs}.pth'), '--out', backbone,
         '--source', 'teacher'], osp.join(out, 'pretrain.log'))
    info = dict(seed=seed, config=DINO_CFG, options=opts, wall_s=wall,
                cpu_s=cpu)
    _dump(info, info_file)
    return backbone, info


def features(model_file, seed, sets, img_size, cache):
    """Pooled features ``{set: Tensor[N, C]}`` of one model (cached)."""
    import torch
    if osp.isfile(cache):
        return torch.load(cache)
    from cervdet.evaluation.knn import build_backbone, extract_features, load_images
    model = build_backbone('resnet18-w32', model_file, seed=seed)
    model.eval()
    feats = {name: extract_features(model, load_images(files, img_size,
                                                       False),
                                    progress=False)
             for name, (files, _) in sets.items()}
    torch.save(feats, cache + '.tmp')
    os.replace(cache + '.tmp', cache)
    return feats


def evaluate(feats, sets, topk, T, herlev_k, smoke):
    """k chosen on the val fields, then the test fields; Herlev within-set."""
    import torch

    from cervdet.evaluation.metrics.knn_metric import (
        f1_scores,
        knn_evaluate,
        weighted_knn_predict,
    )
    bank, bank_y = feats['train'], torch.as_tensor(sets['train'][1])
    n = len(CLASSES)

    def scores(name, k):
        pred, _ = weighted_knn_predict(bank, bank_y, feats[name], k=k, T=T,
                                       num_classes=n)
        return f1_scores(pred, sets[name][1], n)

    val = {k: scores('val', k)['weighted_f1'] for k in topk}
    k = max(topk, key=lambda kk: (val[kk], -kk))  # ties: the smaller k
    test = {kk: scores('test', kk) for kk in topk}
    # binary (NILM vs abnormal) from the same 6-class k-NN prediction: the
    # negative / positive reading of knn_eval.py's bethesda table
    pred, _ = weighted_knn_predict(bank, bank_y, feats['test'], k=k, T=T,
                                   num_classes=n)
    binary = f1_scores(np.asarray(pred) > 0, sets['test'][1] > 0, 2)
    res = dict(k=k, val_weighted_f1={str(kk): v * 100
                                     for kk, v in val.items()},
               test_weighted_f1={str(kk): r['weighted_f1'] * 100
                                 for kk, r in test.items()},
               cric_test_weighted_f1=test[k]['weighted_f1'] * 100,
               cric_test_accuracy=test[k]['accuracy'] * 100,
               cric_test_f1_per_class=dict(zip(
                   CLASSES, (test[k]['f1'] * 100).tolist())),
               cric_test_binary_weighted_f1=binary['weighted_f1'] * 100)
    if 'herlev' in feats:
        labels = sets['herlev'][1]
        hk = [herlev_k] if not smoke else [min(herlev_k, 5)]
        h = knn_evaluate(feats['herlev'], labels, topk=hk, T=T,
                         num_splits=4, seed=0,
                         num_classes=int(labels.max()) + 1)
        r = h[hk[0]]
        res['herlev_k'] = hk[0]
        res['herlev_weighted_f1'] = r['weighted_f1']
        res['herlev_weighted_f1_split_std'] = r.get('weighted_f1_std')
    return res


def mean_std(values):
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return 'n/a'
    if len(v) == 1:
        return f'{v[0]:.1f} (1 seed)'
    return f'{v.mean():.1f} +- {v.std(ddof=1):.1f}'


def table(results, seeds, counts, herlev):
    head = ['row', 'seeds'] + [c for c, _ in COLUMNS] + [
        'DINO pre-training min (wall / CPU)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in ROWS:
        res = results.get(row, [])
        cells = [row, str(len(res))]
        for col, key in COLUMNS:
            vals = [r.get(key) for r in res]
            if key == 'k':
                cells.append(', '.join(str(v) for v in vals) or 'n/a')
            else:
                cells.append(mean_std(vals))
        pre = [r['pretrain'] for r in res if r.get('pretrain')]
        cells.append('{:.1f} / {:.1f}'.format(
            np.mean([p['wall_s'] for p in pre]) / 60,
            np.mean([p['cpu_s'] for p in pre]) / 60) if pre else '-')
        lines.append('| ' + ' | '.join(cells) + ' |')
    data = ('Data: CRIC Bethesda crops (6 classes) by source field of '
            'data/cric-cervix/splits.csv: ' + '; '.join(
                f'{s} {sum(c.values())} ({", ".join(f"{k} {c[k]}" for k in CLASSES)})'
                for s, c in counts.items()) + '. Bank = train fields, '
            'queries = test fields, k of the best val-field weighted F1.')
    if herlev:
        data += (' Herlev: 7 classes, 4 random stratified 75/25 splits, '
                 'fixed k.')
    return (f'k-NN on frozen features, seeds {seeds}, mean +- sample std '
            'over seeds.\n\n' + data + '\n\n' + '\n'.join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='default 0 1 2 (0 with --smoke)')
    p.add_argument('--work-dir', default='work_dirs/evidence')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--crops', default='../shared/data/cric_crops_bethesda')
    p.add_argument('--herlev', default='../shared/data/herlev',
                   help='Herlev folder (skipped when missing)')
    p.add_argument('--img-size', type=int, default=96)
    p.add_argument('--topk', type=int, nargs='+', default=[10, 20, 100, 200])
    p.add_argument('--herlev-k', type=int, default=20)
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--smoke', action='store_true',
                   help='1 DINO epoch of 64 tiles, 8 crops per class and '
                   'split, under <work-dir>/smoke/ (numbers mean nothing)')
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.smoke else [0, 1, 2]
    if args.smoke:
        args.topk = [1, 3, 5]
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, ROOT)
    py = sys.executable
    splits_csv = osp.join(ROOT, 'data/cric-cervix/splits.csv')
    if not osp.isfile(splits_csv):
        sys.exit('data/cric-cervix/splits.csv not found: build it with '
                 'tools/dataset_converters/cric_to_coco.py')
    crop_root = osp.join(ROOT, args.crops)
    if not osp.isdir(crop_root):
        sys.exit(f'{crop_root} not found (../shared/data/README.md)')
    suite_dir = osp.join(ROOT, args.work_dir, *(['smoke'] if args.smoke
                                                else []), 'knn-fields')
    os.makedirs(suite_dir, exist_ok=True)
    by_split = crops_per_split(crop_root, field_split(splits_csv),
                               limit=8 if args.smoke else None)
    unmatched = by_split.pop('unmatched')
    sets = dict(by_split)
    counts = {s: Counter(CLASSES[i] for i in y)
              for s, (_, y) in by_split.items()}
    herlev_root = osp.join(ROOT, args.herlev)
    herlev = osp.isdir(herlev_root)
    if herlev:
        from cervdet.evaluation.knn import list_crop_set
        h_classes, h_files, h_labels = list_crop_set(Path(herlev_root))
        if args.smoke:
            keep = np.concatenate([np.flatnonzero(h_labels == c)[:8]
                                   for c in range(len(h_classes))])
            h_files, h_labels = [h_files[i] for i in keep], h_labels[keep]
        sets['herlev'] = (h_files, h_labels)
    results = {row: [] for row in ROWS}
    for seed in args.seeds:
        for row in ROWS:
            out = osp.join(suite_dir, 'dino_seed%d' % seed if row == ROWS[0]
                           else 'random_seed%d' % seed)
            os.makedirs(out, exist_ok=True)
            res_file = osp.join(out, 'result.json')
            if osp.isfile(res_file):
                with open(res_file) as f:
                    results[row].append(json.load(f))
                continue
            pretrain = None
            model_file = None
            if row == ROWS[0]:
                model_file, pretrain = pretrain_dino(py, seed, out,
                                                     args.smoke)
            t0 = time.process_time()
            feats = features(model_file, seed, sets, args.img_size,
                             osp.join(out, f'features_{args.img_size}.pth'))
            res = evaluate(feats, sets, args.topk, args.temperature,
                           args.herlev_k, args.smoke)
            res.update(row=row, seed=seed, model=model_file,
                       pretrain=pretrain, img_size=args.img_size,
                       eval_cpu_s=time.process_time() - t0,
                       crops=dict(counts=counts, unmatched=unmatched))
            _dump(res, res_file)
            results[row].append(res)
            print(f'[knn-fields] {row} seed {seed}: test weighted F1 '
                  f'{res["cric_test_weighted_f1"]:.1f} (k={res["k"]})',
                  flush=True)
    text = table(results, args.seeds, counts, herlev)
    if args.smoke:
        text = ('SMOKE RUN (1 DINO epoch of 64 tiles, 8 crops per class and '
                'split): these numbers mean nothing.\n\n' + text)
    print(text)
    with open(osp.join(suite_dir, 'table.md'), 'w') as f:
        f.write(text + '\n')
    _dump(results, osp.join(suite_dir, 'results.json'))


if __name__ == '__main__':
    main()
