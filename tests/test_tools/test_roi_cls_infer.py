"""Tests of tools/roi_cls/infer_rois.py and tools/roi_cls/draw_roi.py (run
as subprocesses; their helpers: cervdet.utils.image_files,
cervdet.visualization.pick_roi_result)."""
import json
import shutil
import sys

import cv2
import numpy as np
import pytest

from cervdet.testing.roi_assets import make_tiny_roi_assets
from cervdet.utils.image_files import unique_stems
from conftest import ROOT, run_tool

INFER = ROOT / 'tools' / 'roi_cls' / 'infer_rois.py'
DRAW = ROOT / 'tools' / 'roi_cls' / 'draw_roi.py'


def _run(tool, args):
    """The tool's exit code, stdout and stderr."""
    return run_tool([sys.executable, tool] + [str(a) for a in args],
                    check=False)


@pytest.fixture(scope='module')
def assets(shared_data, tmp_path_factory):
    return make_tiny_roi_assets(tmp_path_factory.mktemp('roi_infer_tool'),
                                shared_data / 'cric_crops_bethesda')


@pytest.fixture(scope='module')
def folder(assets, tmp_path_factory):
    """The 3 test ROIs, a corrupt image and a non-image file."""
    d = tmp_path_factory.mktemp('roi_folder')
    for p in sorted((assets['root'] / 'images' / 'test').glob('*.jpg')):
        shutil.copy(p, d / p.name)
    (d / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    (d / 'notes.txt').write_text('ignored')
    return d


def test_infer_with_ann_file_refuse_overwrite_and_errors(assets, folder,
                                                         tmp_path):
    out = tmp_path / 'out'
    ann = assets['root'] / 'annotations' / 'test.json'
    args = [str(assets['cached_cfg']), str(assets['cached_ckpt']),
            str(folder), '--out-dir', str(out), '--ann-file', str(ann),
            '--encoder-checkpoint', str(assets['encoder_ckpt']),
            '--encoder-checkpoint-prefix', 'backbone.', '--no-progress']
    proc = _run(INFER, args)
    assert proc.returncode == 0
    assert '4 ROIs (3 classified, 1 errors, 0 without cells)' in proc.stdout
    assert 'ROIs/s' in proc.stdout and 'broken.jpg' in proc.stderr
    data = json.loads((out / 'results.json').read_text())
    run, results = data['run'], data['results']
    assert run['num_rois'] == 4 and run['num_errors'] == 1
    assert run['attached_encoder'] and run['classes'] == ['NILM', 'LSIL',
                                                          'HSIL']
    assert sum(run['class_counts'].values()) == 3
    coco = json.loads(ann.read_text())
    by_name = {i['file_name']: i for i in coco['images']}
    stems = [r['stem'] for r in results]
    assert stems == ['broken'] + sorted(n[:-4] for n in by_name)
    bad = results[0]
    assert bad['roi_class'] is None and 'corrupt' in bad['error']
    for r in results[1:]:
        img = by_name[r['stem'] + '.jpg']
        xywh = np.array([a['bbox'] for a in coco['annotations']
                         if a['image_id'] == img['id']], np.float32)
        np.testing.assert_allclose(
            [c['bbox'] for c in r['cells']],
            np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1),
            atol=0.01)
        assert r['gt_roi_class'] == img['roi_label']
        assert all('gt_cell_class' in c and 'cell_class' in c
                   for c in r['cells'])
        assert sum(c['attention'] for c in r['cells']) == pytest.approx(1)
        assert sum(r['roi_scores'].values()) == pytest.approx(1)
        per = json.loads((out / 'rois' / f'{r["stem"]}.json').read_text())
        assert per == r
        pic = cv2.imread(str(out / 'vis' / f'{r["stem"]}.jpg'))
        assert pic.shape[1:] == (192, 3) and pic.shape[0] > 192
    assert not (out / 'vis' / 'broken.jpg').exists()
    assert json.loads((out / 'rois' / 'broken.json').read_text())['error']

    # refuses to overwrite, then --force-overwrite
    before = (out / 'results.json').read_text()
    proc = _run(INFER, args)
    assert proc.returncode == 2
    assert 'refusing to overwrite' in proc.stderr
    assert (out / 'results.json').read_text() == before
    proc = _run(INFER, args + ['--force-overwrite', '--no-pictures'])
    assert proc.returncode == 0

    # draw_roi.py: from a per-ROI file and from results.json
    stem = results[1]['stem']
    pic = tmp_path / 'one.jpg'
    proc = _run(DRAW, [str(out / 'rois' / f'{stem}.json'), '--out',
                       str(pic)])
    assert proc.returncode == 0
    ref = cv2.imread(str(out / 'vis' / f'{stem}.jpg'))
    got = cv2.imread(str(pic))
    assert got.shape == ref.shape
    assert np.abs(got.astype(int) - ref).mean() < 2  # same picture (JPEG)
    proc = _run(DRAW, [str(out / 'rois' / f'{stem}.json'), '--out',
                       str(pic)])
    assert proc.returncode == 2  # exists
    proc = _run(DRAW, [str(out / 'results.json'), '--out',
                       str(tmp_path / 'two.jpg')])
    assert proc.returncode == 2  # which ROI?
    assert 'choose one with --index' in proc.stderr
    proc = _run(DRAW, [str(out / 'results.json'), '--stem', stem,
                       '--out', str(tmp_path / 'two.jpg')])
    assert proc.returncode == 0


def test_infer_with_detector_one_image(assets, folder, tmp_path):
    img = sorted(folder.glob('roi_*.jpg'))[0]
    out = tmp_path / 'det'
    proc = _run(INFER, [
        str(assets['pixel_cfg']), str(assets['pixel_ckpt']), str(img),
        '--out-dir', str(out), '--det-config', str(assets['det_cfg']),
        '--det-checkpoint', str(assets['det_ckpt']), '--det-score-thr',
        '0.0', '--det-max-cells', '5', '--no-progress'])
    assert proc.returncode == 0
    assert '1 ROIs (1 classified, 0 errors' in proc.stdout
    res = json.loads((out / 'results.json').read_text())['results'][0]
    assert res['cell_source'] == 'detector' and res['num_cells'] == 5
    assert all(c['det_label'] == 'cell' for c in res['cells'])
    assert (out / 'vis' / f'{img.stem}.jpg').is_file()


def test_infer_argument_errors(assets, folder, tmp_path):
    base = [str(assets['cached_cfg']), str(assets['cached_ckpt']),
            str(folder), '--out-dir', str(tmp_path / 'x')]
    proc = _run(INFER, base)
    assert proc.returncode == 2  # neither detector nor ann file
    assert 'either with --det-config' in proc.stderr
    ann = str(assets['root'] / 'annotations' / 'test.json')
    proc = _run(INFER, base + ['--ann-file', ann])
    assert proc.returncode == 2
    assert '--encoder-checkpoint' in proc.stderr
    proc = _run(INFER, [str(assets['cached_cfg']),
                        str(assets['cached_ckpt']),
                        str(tmp_path / 'missing'), '--out-dir',
                        str(tmp_path / 'y'), '--ann-file', ann])
    assert proc.returncode == 2
    assert 'neither a file nor a folder' in proc.stderr
    assert unique_stems(['a/x.jpg', 'a/x.png', 'a/y.jpg']) == \
        ['x_jpg', 'x_png', 'y']
