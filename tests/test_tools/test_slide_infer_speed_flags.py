"""tools/slide_infer.py speed flags on a crop of the real ThinPrep field: the
optimised default gives the detections of ``--no-optimize``; ``--precision
bf16`` runs (or refuses clearly on a CPU without bfloat16 units)."""
import csv
import json
import sys

import cv2
import numpy as np
import torch

from conftest import CPU_CONFIG, run_tool


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_speed_flags(tmp_path, shared_data):
    from cervdet.apis.inference_speed import bf16_supported
    from cervdet.testing import random_scoring_detector
    field = cv2.imread(str(shared_data / 'tct_field' / 'field_4096x2816.jpg'))
    slide = tmp_path / 'crop.png'
    cv2.imwrite(str(slide), field[600:1200, 1000:1800])
    model = random_scoring_detector(str(CPU_CONFIG))
    ckpt = tmp_path / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), ckpt)
    common = [sys.executable, 'tools/slide_infer.py', CPU_CONFIG, ckpt, slide,
              '--tile-size', '256', '--overlap', '64', '--score-thr', '0.3',
              '--mpp', '0.5', '--no-mask', '--no-parquet', '--no-progress',
              '--cell-feature-size', '0']
    run_tool(common + ['--out-dir', tmp_path / 'opt'], timeout=600)
    run_tool(common + ['--out-dir', tmp_path / 'plain', '--no-optimize'],
             timeout=600)
    a = _rows(tmp_path / 'opt' / 'crop' / 'detections.csv')
    b = _rows(tmp_path / 'plain' / 'crop' / 'detections.csv')
    assert len(a) == len(b) > 0
    box = ('x1', 'y1', 'x2', 'y2', 'score')
    np.testing.assert_allclose([[float(r[k]) for k in box] for r in a],
                               [[float(r[k]) for k in box] for r in b],
                               atol=1e-3)
    assert [r['class'] for r in a] == [r['class'] for r in b]
    proc = run_tool(common + ['--out-dir', tmp_path / 'bf16', '--precision',
                              'bf16'], timeout=600,
                    check=bf16_supported(torch.device('cpu')))
    if bf16_supported(torch.device('cpu')):
        rep = json.loads((tmp_path / 'bf16' / 'crop' /
                          'report.json').read_text())
        assert rep['settings']['precision'] == 'bf16'
        assert rep['status'] == 'done'
    else:
        assert proc.returncode != 0 and 'use precision fp32' in proc.stderr
