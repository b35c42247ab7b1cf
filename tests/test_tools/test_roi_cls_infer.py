"""Tests of tools/roi_cls/infer_rois.py and tools/roi_cls/draw_roi.py.

Run in process (``main(argv)``): a subprocess costs ~8 s of imports.
"""
import json
import shutil
import sys
import warnings

import cv2
import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / 'tests' / 'test_apis'))
sys.path.insert(0, str(ROOT / 'tools' / 'roi_cls'))
import draw_roi as draw_tool  # noqa: E402
import infer_rois  # noqa: E402

from test_roi_inference import make_tiny_assets  # noqa: E402


@pytest.fixture(scope='module')
def assets(shared_data, tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp('roi_infer_tool'),
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
                                                         tmp_path, capsys):
    out = tmp_path / 'out'
    ann = assets['root'] / 'annotations' / 'test.json'
    args = [str(assets['cached_cfg']), str(assets['cached_ckpt']),
            str(folder), '--out-dir', str(out), '--ann-file', str(ann),
            '--encoder-checkpoint', str(assets['encoder_ckpt']),
            '--encoder-checkpoint-prefix', 'backbone.', '--no-progress']
    assert infer_rois.main(args) == 0
    text = capsys.readouterr()
    assert '4 ROIs (3 classified, 1 errors, 0 without cells)' in text.out
    assert 'ROIs/s' in text.out and 'broken.jpg' in text.err
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
    assert infer_rois.main(args) == 2
    assert 'refusing to overwrite' in capsys.readouterr().err
    assert (out / 'results.json').read_text() == before
    assert infer_rois.main(args + ['--force-overwrite', '--no-pictures']) == 0
    capsys.readouterr()

    # draw_roi.py: from a per-ROI file and from results.json
    stem = results[1]['stem']
    pic = tmp_path / 'one.jpg'
    assert draw_tool.main([str(out / 'rois' / f'{stem}.json'), '--out',
                           str(pic)]) == 0
    ref = cv2.imread(str(out / 'vis' / f'{stem}.jpg'))
    got = cv2.imread(str(pic))
    assert got.shape == ref.shape
    assert np.abs(got.astype(int) - ref).mean() < 2  # same picture (JPEG)
    assert draw_tool.main([str(out / 'rois' / f'{stem}.json'), '--out',
                           str(pic)]) == 2  # exists
    assert draw_tool.main([str(out / 'results.json'), '--out',
                           str(tmp_path / 'two.jpg')]) == 2  # which ROI?
    assert 'choose one with --index' in capsys.readouterr().err
    assert draw_tool.main([str(out / 'results.json'), '--stem', stem,
                           '--out', str(tmp_path / 'two.jpg')]) == 0


def test_infer_with_detector_one_image(assets, folder, tmp_path, capsys):
    img = sorted(folder.glob('roi_*.jpg'))[0]
    out = tmp_path / 'det'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert infer_rois.main([
            str(assets['pixel_cfg']), str(assets['pixel_ckpt']), str(img),
            '--out-dir', str(out), '--det-config', str(assets['det_cfg']),
            '--det-checkpoint', str(assets['det_ckpt']), '--det-score-thr',
            '0.0', '--det-max-cells', '5', '--no-progress']) == 0
    assert '1 ROIs (1 classified, 0 errors' in capsys.readouterr().out
    res = json.loads((out / 'results.json').read_text())['results'][0]
    assert res['cell_source'] == 'detector' and res['num_cells'] == 5
    assert all(c['det_label'] == 'cell' for c in res['cells'])
    assert (out / 'vis' / f'{img.stem}.jpg').is_file()


def test_infer_argument_errors(assets, folder, tmp_path, capsys):
    base = [str(assets['cached_cfg']), str(assets['cached_ckpt']),
            str(folder), '--out-dir', str(tmp_path / 'x')]
    assert infer_rois.main(base) == 2  # neither detector nor ann file
    assert 'either with --det-config' in capsys.readouterr().err
    ann = str(assets['root'] / 'annotations' / 'test.json')
    assert infer_rois.main(base + ['--ann-file', ann]) == 2
    assert '--encoder-checkpoint' in capsys.readouterr().err
    assert infer_rois.main([str(assets['cached_cfg']),
                            str(assets['cached_ckpt']),
                            str(tmp_path / 'missing'), '--out-dir',
                            str(tmp_path / 'y'), '--ann-file', ann]) == 2
    assert 'neither a file nor a folder' in capsys.readouterr().err
    assert infer_rois.unique_stems(['a/x.jpg', 'a/x.png', 'a/y.jpg']) == \
        ['x_jpg', 'x_png', 'y']
