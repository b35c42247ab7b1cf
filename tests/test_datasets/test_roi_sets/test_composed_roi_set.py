"""Tests of cervdet.datasets.roi_sets (composed ROI sets) and
tools/dataset_converters/build_roi_set.py on the real CRIC crops."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cervdet.datasets import roi_sets as brs
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'build_roi_set.py'

SMALL = dict(roi_size=256, cells_per_roi=(6, 12), num_train=9, num_val=3,
             num_test=3, crop_scale=(0.4, 0.6), background='paper', seed=1,
             progress=False)


@pytest.fixture(scope='module')
def roi_set(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('roi_set') / 'out'
    return brs.build_roi_set(out, shared_data / 'cric_crops_bethesda',
                             preset='cpu', **SMALL)


def _load(res, split):
    return json.loads(Path(res['annotations'][split]).read_text())


def _cells_by_image(coco):
    names = {c['id']: c['name'] for c in coco['categories']}
    by_img = {img['id']: [] for img in coco['images']}
    for a in coco['annotations']:
        by_img[a['image_id']].append((names[a['category_id']], a['bbox']))
    return by_img


def test_roi_label_of_hand_cases():
    assert brs.roi_label_of(['NILM', 'NILM']) == 'NILM'
    assert brs.roi_label_of(['NILM', 'ASC-US']) == 'LSIL'
    assert brs.roi_label_of(['LSIL', 'ASC-H', 'NILM']) == 'HSIL'
    assert brs.roi_label_of(['SCC']) == 'HSIL'
    assert brs.roi_label_of([]) == 'NILM'


def test_balanced_labels_counts():
    labels = brs.balanced_labels(10, 3, np.random.default_rng(0))
    assert sorted(np.bincount(labels, minlength=3).tolist()) == [3, 3, 4]


def test_free_positions_avoids_occupied():
    occ = np.zeros((16, 16), bool)
    occ[:, :8] = True  # left half taken
    pos = brs.free_positions(occ, 4, 4, max_cover=0.0, stride=2)
    assert len(pos) > 0 and (pos[:, 1] >= 8).all()
    assert {tuple(p) for p in pos} == {(y, x) for y in range(0, 13, 2)
                                       for x in range(8, 13, 2)}
    # a quarter covered is allowed with max_cover=0.25: x = 7 (1 of 4 cols)
    pos = brs.free_positions(occ, 4, 4, max_cover=0.25, stride=1)
    assert pos[:, 1].min() == 7
    assert len(brs.free_positions(occ, 17, 4, 1.0)) == 0


def test_layout_and_interface_format(roi_set):
    out = Path(roi_set['out_dir'])
    meta = json.loads((out / 'meta.json').read_text())
    assert 'CC BY 4.0' in meta['note']
    for split, n in zip(brs.SPLITS, (9, 3, 3)):
        coco = _load(roi_set, split)
        assert coco['roi_classes'] == ['NILM', 'LSIL', 'HSIL']
        assert coco['cell_to_roi_class'] == brs.CELL_TO_ROI_CLASS
        assert [c['name'] for c in coco['categories']] == list(brs.CELL_CLASSES)
        assert len(coco['images']) == n
        for img in coco['images']:
            assert (out / 'images' / split / img['file_name']).is_file()
            assert img['roi_label'] in coco['roi_classes']


def test_labels_follow_worst_cell_and_minority(roi_set):
    for split in brs.SPLITS:
        coco = _load(roi_set, split)
        cells = _cells_by_image(coco)
        for img in coco['images']:
            classes = [c for c, _ in cells[img['id']]]
            assert len(classes) >= 1
            assert img['roi_label'] == brs.roi_label_of(classes)
            abnormal = sum(c != 'NILM' for c in classes)
            if img['roi_label'] == 'NILM':
                assert abnormal == 0
            else:
                assert 1 <= abnormal <= max(1, 0.5 * len(classes))


def test_classes_balanced(roi_set):
    for split, n in zip(brs.SPLITS, (9, 3, 3)):
        labels = [img['roi_label'] for img in _load(roi_set, split)['images']]
        assert {c: labels.count(c) for c in brs.ROI_CLASSES} == \
            {c: n // 3 for c in brs.ROI_CLASSES}


def test_no_crop_in_two_splits(roi_set):
    meta = json.loads(Path(roi_set['meta']).read_text())
    pools = {s: {p for ps in meta['crops'][s].values() for p in ps}
             for s in brs.SPLITS}
    assert not pools['train'] & pools['val']
    assert not pools['train'] & pools['test']
    assert not pools['val'] & pools['test']
    for s in brs.SPLITS:
        assert meta['used_crops'][s] and set(meta['used_crops'][s]) <= pools[s]


def test_boxes_inside_images(roi_set):
    for split in brs.SPLITS:
        coco = _load(roi_set, split)
        size = {img['id']: (img['width'], img['height'])
                for img in coco['images']}
        for a in coco['annotations']:
            x, y, w, h = a['bbox']
            W, H = size[a['image_id']]
            assert w > 0 and h > 0
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H


def test_refuses_overwrite(roi_set, shared_data):
    out = Path(roi_set['out_dir'])
    with pytest.raises(FileExistsError, match='--force-overwrite'):
        brs.build_roi_set(out, shared_data / 'cric_crops_bethesda', **SMALL)
    proc = run_tool([sys.executable, TOOL, '--out-dir', str(out), '--crop-root',
                     str(shared_data / 'cric_crops_bethesda'), '--no-progress'],
                    check=False)
    assert proc.returncode == 2 and 'refusing to overwrite' in proc.stderr


def test_bad_settings():
    with pytest.raises(ValueError, match='--abnormal-fraction'):
        brs.make_config('cpu', abnormal_fraction=(0.5, 0.2))
    with pytest.raises(ValueError, match='--preset'):
        brs.make_config('huge')


def test_cric_crops_split_per_field(shared_data):
    """The CRIC crops (``<fieldstem>_<cellid>``) are split per source
    field: no field gives cells to two splits."""
    crops = brs.list_crops(shared_data / 'cric_crops_bethesda', 'cric')
    pools = brs.split_crops(crops, (0.7, 0.15, 0.15), seed=0, by_field=True)
    fields = {s: {brs.field_of(p) for ps in pools[s].values() for p in ps}
              for s in brs.SPLITS}
    assert all(fields[s] for s in brs.SPLITS)
    assert not (fields['train'] & fields['val'])
    assert not (fields['train'] & fields['test'])
    assert not (fields['val'] & fields['test'])
    n = sum(len(ps) for ps in crops.values())
    assert sum(len(ps) for s in brs.SPLITS for ps in pools[s].values()) == n
