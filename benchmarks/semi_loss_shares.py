"""Where the loss of the dual-alignment runs goes: per seed, the mean share
of the total loss taken by the detection losses of the labeled images, the
proxy / memory-bank metric losses of the labeled proposals (``loss_pml``,
``loss_pmb``) and those of the unlabeled ones (``loss_pml_u``,
``loss_pmb_u``), and how many pseudo labels an unlabeled batch gave
(``num_pseudo``), read from the runs' ``vis_data/scalars.json`` (after the
50-iteration warm-up).

Usage:
    python benchmarks/semi_loss_shares.py \\
        work_dirs/evidence/semi-dual-align/dual-align_faster-rcnn_r18-w32_fpn_sgd-600it_1xb4_semi-25_cric-cervix-512
"""
import argparse
import glob
import json
import os.path as osp

import numpy as np

DET = ('sup_loss_rpn_cls', 'sup_loss_rpn_bbox', 'sup_loss_cls',
       'sup_loss_bbox')


def shares(run_dir, skip=50):
    """Mean shares of one run (``seed<k>`` folder) as a dict."""
    rows = {}
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if 'loss_pml' in r and r.get('iter', 0) > skip:
                    rows[r['iter']] = r  # a resumed run logs once per iter
    if not rows:
        raise SystemExit(f'no dual-alignment training log under {run_dir}')
    rs = [rows[k] for k in sorted(rows)]
    total = np.array([r['loss'] for r in rs])

    def part(keys):
        return float((np.array([sum(r[k] for k in keys) for r in rs]) /
                      total).mean())

    pseudo = np.array([r['num_pseudo'] for r in rs])
    return dict(iters_logged=len(rs), detection=part(DET),
                labeled_metric=part(('loss_pml', 'loss_pmb')),
                unlabeled_metric=part(('loss_pml_u', 'loss_pmb_u')),
                num_pseudo_mean=float(pseudo.mean()),
                no_pseudo_frac=float((pseudo == 0).mean()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('row_dir', help='a row folder of the semi-dual-align '
                   'suite (holding seed<k>/)')
    args = p.parse_args(argv)
    print('| seed | logged iters | detection | labeled metric | unlabeled '
          'metric | pseudo labels / batch | batches without one |')
    print('|---|---|---|---|---|---|---|')
    for run in sorted(glob.glob(osp.join(args.row_dir, 'seed*'))):
        s = shares(run)
        print(f'| {osp.basename(run)[4:]} | {s["iters_logged"]} | '
              f'{s["detection"]:.2f} | {s["labeled_metric"]:.2f} | '
              f'{s["unlabeled_metric"]:.2f} | {s["num_pseudo_mean"]:.1f} | '
              f'{s["no_pseudo_frac"]:.2f} |')


if __name__ == '__main__':
    main()
