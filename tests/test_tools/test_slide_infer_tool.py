"""tools/slide_infer.py and tools/dist_slide_infer.sh with the shipped CPU
RetinaNet config on a crop of the real ThinPrep field: 2 gloo processes give
the same detections as 1 process; outputs are complete; a second run skips
the finished slide."""
import csv
import json
import sys

import cv2
import numpy as np
import torch

from conftest import CPU_CONFIG, free_port, run_tool


def _checkpoint(path):
    """A RetinaNet of the CPU config with fixed random weights, classes in
    its meta (as tools/train.py saves them)."""
    from cervdet.testing import random_scoring_detector
    model = random_scoring_detector(str(CPU_CONFIG))
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), path)
    return path


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_one_vs_two_processes(tmp_path, shared_data):
    field = cv2.imread(str(shared_data / 'tct_field' / 'field_4096x2816.jpg'))
    assert field is not None
    slides = tmp_path / 'slides'
    slides.mkdir()
    cv2.imwrite(str(slides / 'field_crop.png'), field[600:1400, 1000:2200])
    ckpt = _checkpoint(tmp_path / 'retinanet_random.pth')
    common = ['--tile-size', '384', '--overlap', '96', '--batch-size', '2',
              '--num-workers', '1', '--score-thr', '0.3', '--mpp', '0.5',
              '--top-k', '8']
    run_tool([sys.executable, 'tools/slide_infer.py', CPU_CONFIG, ckpt, slides,
              '--out-dir', tmp_path / 'one', *common], timeout=600)
    run_tool(['bash', 'tools/dist_slide_infer.sh', CPU_CONFIG, ckpt, slides,
              '2', '--out-dir', tmp_path / 'two', *common],
             env=dict(PORT=str(free_port())), timeout=600)
    one = _rows(tmp_path / 'one' / 'field_crop' / 'detections.csv')
    two = _rows(tmp_path / 'two' / 'field_crop' / 'detections.csv')
    assert len(one) > 0 and len(one) == len(two)
    a = np.asarray([[float(r[k]) for k in ('x1', 'y1', 'x2', 'y2', 'score')]
                    for r in one])
    b = np.asarray([[float(r[k]) for k in ('x1', 'y1', 'x2', 'y2', 'score')]
                    for r in two])
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert [r['class'] for r in one] == [r['class'] for r in two]
    rep1 = json.loads((tmp_path / 'one' / 'field_crop' /
                       'report.json').read_text())
    rep2 = json.loads((tmp_path / 'two' / 'field_crop' /
                       'report.json').read_text())
    assert rep1['tiles']['read'] == rep2['tiles']['read'] > 0
    assert rep1['slide_scores'] == rep2['slide_scores'] or np.allclose(
        list(rep1['slide_scores'].values()),
        list(rep2['slide_scores'].values()), atol=1e-4)
    top = np.load(tmp_path / 'one' / 'field_crop' / 'cells_topk.npz')
    assert top['feats'].shape == (min(8, len(one)), 256)  # R18-w32 stage 4
    summary = json.loads((tmp_path / 'two' / 'summary.json').read_text())
    assert summary['world_size'] == 2
    # a second run leaves the finished slide alone
    proc = run_tool([sys.executable, 'tools/slide_infer.py', CPU_CONFIG, ckpt,
                     slides, '--out-dir', tmp_path / 'one', *common])
    assert 'skipped' in proc.stdout
