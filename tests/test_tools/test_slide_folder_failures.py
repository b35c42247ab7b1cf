"""tools/slide_infer.py on a folder with a half-copied pyramidal TIFF, a
16-bit TIFF, a 10x10 image and good fields: the good ones finish,
the 16-bit one is read, the broken one is named, the exit code is 1, the
summary lists every slide and is merged across runs, and a re-run with
other settings says that the finished slides are of the earlier settings."""
import json
import sys

import cv2
import numpy as np
import tifffile
import torch

from cervdet.testing.pyramidal_tiff import write_pyramidal_tiff_from_array
from conftest import CPU_CONFIG, run_tool


def _checkpoint(path):
    from cervdet.testing import random_scoring_detector
    model = random_scoring_detector(str(CPU_CONFIG))
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), path)
    return path


def _slides(folder, shared_data):
    field = cv2.imread(str(shared_data / 'tct_field' / 'field_4096x2816.jpg'))
    rgb = cv2.cvtColor(field, cv2.COLOR_BGR2RGB)
    folder.mkdir()
    cv2.imwrite(str(folder / 'a_good.png'), field[600:1000, 1000:1500])
    deep = rgb[1000:1400, 1500:2000].astype(np.uint16) * 257
    tifffile.imwrite(folder / 'b_16bit.tiff', deep, tile=(128, 128),
                     photometric='rgb')
    write_pyramidal_tiff_from_array(folder / 'c_halfcopied.tiff',
                                    rgb[0:1024, 0:1024], mpp=0.5,
                                    downsamples=(1, 4), tile=128,
                                    compression='zlib')
    data = (folder / 'c_halfcopied.tiff').read_bytes()
    (folder / 'c_halfcopied.tiff').write_bytes(data[:len(data) // 2])
    cv2.imwrite(str(folder / 'd_tiny.png'), field[700:710, 1200:1210])
    return deep


def _run(ckpt, slides, out, *extra):
    return run_tool([sys.executable, 'tools/slide_infer.py', CPU_CONFIG, ckpt,
                     slides, '--out-dir', out, '--tile-size', '256',
                     '--overlap', '64', '--batch-size', '2', '--num-workers',
                     '0', '--mpp', '0.5', '--cell-feature-size', '0',
                     '--no-progress', *extra], check=False, timeout=900)


def test_folder_with_broken_slides(tmp_path, shared_data):
    slides = tmp_path / 'slides'
    deep = _slides(slides, shared_data)
    ckpt = _checkpoint(tmp_path / 'random.pth')
    out = tmp_path / 'out'
    proc = _run(ckpt, slides, out)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    rows = {r['slide']: r for r in summary['slides']}
    assert sorted(rows) == ['a_good', 'b_16bit', 'c_halfcopied', 'd_tiny']
    assert [rows[s]['status'] for s in sorted(rows)] == \
        ['done', 'done', 'failed', 'done']
    assert str(slides / 'c_halfcopied.tiff') in rows['c_halfcopied']['error']
    assert f'FAILED {slides / "c_halfcopied.tiff"}' in proc.stderr
    # the 16-bit slide was read as 8-bit (its tissue found, tiles read)
    rep = json.loads((out / 'b_16bit' / 'report.json').read_text())
    assert rep['tiles']['read'] > 0
    from cervdet.datasets.slide_readers import open_slide
    with open_slide(slides / 'b_16bit.tiff') as r:
        np.testing.assert_array_equal(r.read_region(0, 0, 500, 400),
                                      (deep // 257).astype(np.uint8))
    # a 10x10 image is not reported as a negative slide without a warning
    assert 'too small to hold the cells' in rows['d_tiny']['warnings'][0]
    assert 'warning: the image is only 10x10 px' in proc.stdout
    assert 'finished before: skipped' not in proc.stdout

    # again with another score threshold: finished slides are skipped and
    # say that they are of the earlier settings
    proc = _run(ckpt, slides, out, '--score-thr', '0.3')
    assert proc.returncode == 1
    assert 'a_good.png: skipped (finished in an earlier run; finished ' \
        'before with other settings (score_thr: 0.05 -> 0.3)' in proc.stdout
    # one slide alone: the summary keeps the rows of the others
    proc = _run(ckpt, slides / 'a_good.png', out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'skipped (finished in an earlier run)' in proc.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert sorted(r['slide'] for r in summary['slides']) == \
        ['a_good', 'b_16bit', 'c_halfcopied', 'd_tiny']
    assert summary['last_run']['slides'] == [str(slides / 'a_good.png')]
