"""benchmarks/semi_loss_shares.py against hand-computed shares."""
import json
from pathlib import Path

import pytest

from benchmarks import semi_loss_shares as mod

ROOT = Path(__file__).resolve().parents[2]


def _log(run, rows):
    d = run / '20260101_000000' / 'vis_data'
    d.mkdir(parents=True)
    (d / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in rows))


def test_shares_by_hand(tmp_path):
    run = tmp_path / 'seed0'
    base = dict(sup_loss_rpn_cls=0.5, sup_loss_rpn_bbox=0.5, sup_loss_cls=0.5,
                sup_loss_bbox=0.5, loss_pmb=1.0, loss_pml_u=0.5,
                loss_pmb_u=0.5)
    _log(run, [
        dict(base, iter=10, loss=99., loss_pml=1.0, num_pseudo=7),  # warm-up
        dict(base, iter=60, loss=5.0, loss_pml=1.0, num_pseudo=0),
        dict(base, iter=70, loss=6.0, loss_pml=2.0, num_pseudo=4),
        {'iter': 70, 'coco/bbox_mAP': 0.1},  # a validation line
    ])
    s = mod.shares(str(run))
    assert s['iters_logged'] == 2
    assert s['detection'] == pytest.approx((2 / 5 + 2 / 6) / 2)
    assert s['labeled_metric'] == pytest.approx((2 / 5 + 3 / 6) / 2)
    assert s['unlabeled_metric'] == pytest.approx((1 / 5 + 1 / 6) / 2)
    assert s['num_pseudo_mean'] == 2 and s['no_pseudo_frac'] == 0.5


def test_no_log_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match='no dual-alignment training log'):
        mod.shares(str(tmp_path))
