"""Tests of ``build_roi_set.py --source herlev`` on the real Herlev cells."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cervdet.datasets import roi_sets as brs
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'build_roi_set.py'

SMALL = dict(roi_size=256, cells_per_roi=(6, 12), num_train=9, num_val=3,
             num_test=3, background='paper', seed=2, source='herlev',
             progress=False)


@pytest.fixture(scope='module')
def herlev_set(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('roi_herlev') / 'out'
    return brs.build_roi_set(out, shared_data / 'herlev', preset='cpu',
                             **SMALL)


def _load(res, split):
    return json.loads(Path(res['annotations'][split]).read_text())


def _meta(res):
    return json.loads(Path(res['meta']).read_text())


def test_herlev_mapping_is_ours_and_complete(shared_data):
    m = brs.HERLEV_FOLDER_TO_CELL_CLASS
    assert {f for f, c in m.items() if c == 'NILM'} == {
        'normal_superficiel', 'normal_intermediate', 'normal_columnar'}
    assert {f for f, c in m.items() if c == 'LSIL'} == {'light_dysplastic'}
    assert {f for f, c in m.items() if c == 'HSIL'} == {
        'moderate_dysplastic', 'severe_dysplastic', 'carcinoma_in_situ'}
    # every shared Herlev folder is mapped
    assert {p.name for p in (shared_data / 'herlev').iterdir()
            if p.is_dir()} == set(m)
    spec = brs.SOURCES['herlev']
    assert spec.cell_classes == ('NILM', 'LSIL', 'HSIL')
    assert all(k == v for k, v in spec.cell_to_roi_class.items())
    # severity rule NILM < LSIL < HSIL with the identity mapping
    assert brs.roi_label_of(['NILM', 'LSIL', 'NILM'],
                            spec.cell_to_roi_class) == 'LSIL'
    assert brs.roi_label_of(['LSIL', 'HSIL'], spec.cell_to_roi_class) == \
        'HSIL'


def test_herlev_crop_scale_default_and_override():
    cfg = brs.make_config('cpu', source='herlev')
    # CRIC cpu 0.55-0.8 of 100 px = 55-80 px -> x 100/224 for 224 px cells
    assert cfg.crop_scale == (0.246, 0.357)
    assert 224 * cfg.crop_scale[0] == pytest.approx(55, abs=0.2)
    assert 224 * cfg.crop_scale[1] == pytest.approx(80, abs=0.2)
    assert cfg.cells_per_roi == (8, 30)  # the cpu preset's range
    assert brs.make_config('cpu').crop_scale == (0.55, 0.8)  # cric unchanged
    assert brs.make_config('cpu', source='herlev',
                           crop_scale=(0.3, 0.4)).crop_scale == (0.3, 0.4)
    with pytest.raises(ValueError, match='--source'):
        brs.make_config('cpu', source='sipakmed')


def test_trim_uniform_border_hand_case():
    img = np.full((20, 30, 3), 120, np.uint8)         # uniform bars
    rng = np.random.default_rng(0)
    img[4:15, 6:27] = rng.integers(0, 255, (11, 21, 3), dtype=np.uint8)
    out = brs.trim_uniform_border(img)
    assert out.shape == (11, 21, 3)
    assert (out == img[4:15, 6:27]).all()
    # nothing to trim / all uniform / too little left: unchanged
    assert brs.trim_uniform_border(out).shape == out.shape
    flat = np.full((10, 10, 3), 50, np.uint8)
    assert brs.trim_uniform_border(flat) is flat
    thin = np.full((20, 20, 3), 9, np.uint8)
    thin[:, 9:11] = rng.integers(0, 255, (20, 2, 3), dtype=np.uint8)
    assert brs.trim_uniform_border(thin).shape == (20, 20, 3)


def test_pool_by_cell_class_merges_folders():
    pool = {'normal_superficiel': ['a'], 'normal_columnar': ['b', 'c'],
            'light_dysplastic': ['d'], 'severe_dysplastic': [],
            'carcinoma_in_situ': ['e']}
    merged = brs.pool_by_cell_class(pool, brs.HERLEV_FOLDER_TO_CELL_CLASS)
    assert merged == {'NILM': ['a', 'b', 'c'], 'LSIL': ['d'], 'HSIL': ['e']}


def test_herlev_layout_classes_and_labels(herlev_set):
    meta = _meta(herlev_set)
    assert meta['source'] == 'herlev' and 'Herlev' in meta['note']
    assert meta['cell_classes'] == ['NILM', 'LSIL', 'HSIL']
    for split, n in zip(brs.SPLITS, (9, 3, 3)):
        coco = _load(herlev_set, split)
        assert [(c['id'], c['name']) for c in coco['categories']] == \
            [(1, 'NILM'), (2, 'LSIL'), (3, 'HSIL')]
        assert coco['roi_classes'] == ['NILM', 'LSIL', 'HSIL']
        assert coco['cell_to_roi_class'] == {
            'NILM': 'NILM', 'LSIL': 'LSIL', 'HSIL': 'HSIL'}
        labels = [img['roi_label'] for img in coco['images']]
        assert {c: labels.count(c) for c in brs.ROI_CLASSES} == \
            {c: n // 3 for c in brs.ROI_CLASSES}
        names = {c['id']: c['name'] for c in coco['categories']}
        for img in coco['images']:
            cells = [names[a['category_id']] for a in coco['annotations']
                     if a['image_id'] == img['id']]
            assert cells
            # label = worst cell, abnormal cells a minority (<= 30 % + 1)
            assert img['roi_label'] == max(cells, key=brs.ROI_CLASSES.index)
            n_abn = sum(c != 'NILM' for c in cells)
            if img['roi_label'] == 'NILM':
                assert n_abn == 0
            else:
                assert 1 <= n_abn <= max(1, round(0.3 * 12))
        for a in coco['annotations']:  # 55-80 px cells, inside the ROI
            x, y, w, h = a['bbox']
            assert 0 <= x and 0 <= y and x + w <= 256 and y + h <= 256
            assert max(w, h) <= 81


def test_herlev_splits_disjoint_and_crops_reused(herlev_set, shared_data):
    meta = _meta(herlev_set)
    per_folder = meta['crops_per_folder']
    for folder, cls in brs.HERLEV_FOLDER_TO_CELL_CLASS.items():
        parts = [set(per_folder[s][folder]) for s in brs.SPLITS]
        assert all(parts)  # every folder in every split
        assert not (parts[0] & parts[1] or parts[0] & parts[2]
                    or parts[1] & parts[2])
        files = {f'herlev/{folder}/{p.name}'
                 for p in (shared_data / 'herlev' / folder).glob('*.jpg')}
        assert set().union(*parts) == files
        for s in brs.SPLITS:  # folder crops pooled under their cell class
            assert set(per_folder[s][folder]) <= set(meta['crops'][s][cls])
    for s in brs.SPLITS:
        pool = {p for ps in meta['crops'][s].values() for p in ps}
        assert meta['used_crops'][s] and set(meta['used_crops'][s]) <= pool
    # 195 normal cells: crops are reused across ROIs of a split
    coco = _load(herlev_set, 'train')
    assert len(coco['annotations']) > len(meta['used_crops']['train'])


def test_herlev_dataset_reads_cell_labels(herlev_set):
    from cervdet.datasets import ROIBagDataset
    root = herlev_set['out_dir']
    ds = ROIBagDataset(data_root=str(root), ann_file='annotations/train.json',
                       data_prefix=dict(img_path='images/train/'),
                       pipeline=[])
    assert ds.metainfo['cell_classes'] == ('NILM', 'LSIL', 'HSIL')
    coco = _load(herlev_set, 'train')
    for info, img in zip(ds, coco['images']):
        want = [a['category_id'] - 1 for a in coco['annotations']
                if a['image_id'] == img['id']]
        got = np.asarray(info['cell_labels']).tolist()
        assert got == want
        assert info['gt_label'] == brs.ROI_CLASSES.index(img['roi_label'])


def test_herlev_cli_errors(tmp_path):
    (tmp_path / 'crops').mkdir()
    proc = run_tool([sys.executable, TOOL, '--out-dir', str(tmp_path / 'o'),
                     '--source', 'herlev', '--crop-root',
                     str(tmp_path / 'crops')], check=False)
    assert proc.returncode == 2
    err = proc.stderr
    assert 'normal_superficiel' in err and '--source herlev' in err
