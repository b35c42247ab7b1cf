"""cervdet.datasets.cric and tools/dataset_converters/cric_to_coco.py: CRIC's
point CSV -> per-field COCO splits (hand-made CSVs, then real CRIC fields)."""
import json
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from cervdet.datasets.cric import (
    ABNORMAL_TBS,
    CricError,
    build_cric_coco,
    points_to_boxes,
    read_cric_csv,
    stratified_field_split,
)
from conftest import run_tool

HEADER = ('image_id,image_filename,image_doi,cell_id,bethesda_system,'
          'nucleus_x,nucleus_y\n')
NILM = 'Negative for intraepithelial lesion'


def _csv(path, rows):
    path.write_text(HEADER + ''.join(
        f'{i},{f}.png,doi,{c},{cls},{x},{y}\n'
        for i, f, c, cls, x, y in rows))
    return path


def _img(folder, stem, size, ext='.jpg'):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, (200, 190, 210)).save(folder / f'{stem}{ext}')


def _field_rows(n_fields=9):
    """Fields f0..f8: each abnormal class in 3 fields, 2 NILM cells each."""
    rows, cid = [], 1
    for k in range(n_fields):
        for cls in (NILM, NILM, ABNORMAL_TBS[k % 5], ABNORMAL_TBS[(k + 2) % 5]):
            rows.append((k, f'f{k}', cid, cls, 100 + 10 * cid, 200))
            cid += 1
    return rows


def test_points_to_boxes_clip_and_flag():
    pts = np.array([[50., 60.], [5., 60.], [95., 98.]])
    boxes, clipped = points_to_boxes(pts, 20, 100, 100)
    np.testing.assert_allclose(
        boxes, [[40, 50, 60, 70], [0, 50, 15, 70], [85, 88, 100, 100]])
    assert clipped.tolist() == [False, True, True]


def test_scaling_to_real_image_size_and_box_size(tmp_path):
    # one native-size image and one half-size image of the same frame
    csv = _csv(tmp_path / 'c.csv', [
        (1, 'a', 1, 'HSIL', 688, 510), (2, 'b', 2, 'HSIL', 688, 510),
        (3, 'c', 3, 'HSIL', 1370, 1015)
    ] + [(9 + k, f'x{k}', 10 + k, c, 300, 300)
         for k, c in enumerate(ABNORMAL_TBS * 3)])
    _img(tmp_path / 'img', 'a', (1376, 1020), '.png')
    _img(tmp_path / 'img', 'b', (688, 510))
    _img(tmp_path / 'img', 'c', (688, 510))
    for k in range(15):
        _img(tmp_path / 'img', f'x{k}', (688, 510))
    cocos, paths, rep = build_cric_coco(str(csv), [str(tmp_path / 'img')],
                                        label_set='bethesda6', box_size=100)
    anns = {a['cric_cell_id']: (a, img) for c in cocos.values()
            for img in c['images'] for a in c['annotations']
            if a['image_id'] == img['id']}
    a, img = anns[1]  # native: centre of the frame, 100 px box
    assert (img['width'], img['height']) == (1376, 1020)
    assert a['point'] == [688, 510] and a['bbox'] == [638, 460, 100, 100]
    a, img = anns[2]  # half size: point and box halved
    assert a['point'] == [344, 255] and a['bbox'] == [319, 230, 50, 50]
    a, img = anns[3]  # near the corner: clipped to the image
    assert a['point'] == [685, 507.5]
    assert a['bbox'] == [660, 482.5, 28, 27.5]
    assert rep.clipped_boxes == 1
    assert a['bethesda_class'] == 'HSIL'
    cats = [c['name'] for c in cocos['train']['categories']]
    assert cats == ['NILM', 'ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC']
    assert a['category_id'] == 5


def test_box_size_in_micrometres_needs_pixel_size(tmp_path):
    csv = _csv(tmp_path / 'c.csv', [(1, 'a', 1, 'HSIL', 10, 10)])
    with pytest.raises(CricError, match='--um-per-px'):
        build_cric_coco(str(csv), [str(tmp_path)], box_unit='um',
                        box_size=16)


def test_split_is_per_field_stratified_and_seeded():
    fields = {f'f{k}': [ABNORMAL_TBS[k % 5]] for k in range(15)}
    fields.update({f'n{k}': ['NILM'] for k in range(20)})
    a = stratified_field_split(fields, seed=3)
    assert a == stratified_field_split(fields, seed=3)
    assert a != stratified_field_split(fields, seed=4)
    assert set(a) == set(fields)  # every field exactly once
    for sp in ('train', 'val', 'test'):
        held = {fields[f][0] for f in a if a[f] == sp}
        assert set(ABNORMAL_TBS) <= held, (sp, held)
    share = Counter(a.values())
    assert share['train'] > share['val'] and share['train'] > share['test']


def test_split_refuses_class_in_too_few_fields():
    fields = {'f0': ['SCC'], 'f1': ['SCC']}
    fields.update({f'g{k}': list(ABNORMAL_TBS[:4]) for k in range(5)})
    with pytest.raises(CricError, match="'SCC': 2"):
        stratified_field_split(fields)


def test_label_sets(tmp_path):
    rows = _field_rows()
    csv = _csv(tmp_path / 'c.csv', rows)
    for k in range(9):
        _img(tmp_path / 'img', f'f{k}', (688, 510))
    n_nilm = sum(r[3] == NILM for r in rows)
    for label_set, cats in (('abnormal5', list(ABNORMAL_TBS)),
                            ('bethesda6', ['NILM'] + list(ABNORMAL_TBS)),
                            ('binary', ['normal', 'abnormal'])):
        cocos, _, rep = build_cric_coco(
            str(csv), [str(tmp_path / 'img')], label_set=label_set,
            fractions=(0.34, 0.33, 0.33))
        anns = [a for c in cocos.values() for a in c['annotations']]
        others = [p for c in cocos.values() for im in c['images']
                  for p in im['other_points']]
        assert [c['name'] for c in cocos['val']['categories']] == cats
        if label_set == 'abnormal5':
            assert len(anns) == len(rows) - n_nilm and len(others) == n_nilm
            assert {p['bethesda_class'] for p in others} == {'NILM'}
        else:
            assert len(anns) == len(rows) and others == []
        if label_set == 'binary':
            by = Counter((a['bethesda_class'] == 'NILM', a['category_id'])
                         for a in anns)
            assert by == {(True, 1): n_nilm, (False, 2): len(rows) - n_nilm}
        # no field in two splits, ids unique across the splits
        stems = [im['file_name'] for c in cocos.values() for im in c['images']]
        assert len(stems) == len(set(stems)) == 9
        assert len({a['id'] for a in anns}) == len(anns)


def test_errors_and_counted_warnings(tmp_path):
    rows = _field_rows()
    _img(tmp_path / 'img', 'f0', (688, 510))
    for k in range(1, 9):
        _img(tmp_path / 'img', f'f{k}', (688, 510))
    # unknown class: error names it and its line; warn skips and counts
    bad = _csv(tmp_path / 'bad.csv', rows + [(1, 'f1', 99, 'Koilocyte', 5, 5)])
    with pytest.raises(CricError, match=r"'Koilocyte' on lines \[38\]"):
        build_cric_coco(str(bad), [str(tmp_path / 'img')])
    _, _, rep = build_cric_coco(str(bad), [str(tmp_path / 'img')],
                                on_unknown_class='warn',
                                fractions=(0.34, 0.33, 0.33))
    assert rep.unknown_classes == {'Koilocyte': 1}
    # a point outside its image: counted warning, or an error
    out = _csv(tmp_path / 'out.csv', rows + [(1, 'f1', 98, 'HSIL', 1500, 5)])
    _, _, rep = build_cric_coco(str(out), [str(tmp_path / 'img')],
                                fractions=(0.34, 0.33, 0.33))
    assert [p[:2] for p in rep.outside_points] == [('f1', 98)]
    with pytest.raises(CricError, match='outside'):
        build_cric_coco(str(out), [str(tmp_path / 'img')],
                        on_outside_point='error')
    # a field without image: counted (and named) warning, or an error
    miss = _csv(tmp_path / 'miss.csv', rows + [(50, 'zz', 97, 'HSIL', 5, 5)])
    _, _, rep = build_cric_coco(str(miss), [str(tmp_path / 'img')],
                                fractions=(0.34, 0.33, 0.33))
    assert rep.missing_images == ['zz']
    assert any('zz' in line for line in rep.lines())
    with pytest.raises(CricError, match='no image'):
        build_cric_coco(str(miss), [str(tmp_path / 'img')],
                        on_missing_image='error')
    # missing columns, empty file, corrupt image
    (tmp_path / 'cols.csv').write_text('image_id,cell_id\n1,2\n')
    with pytest.raises(CricError, match='columns'):
        read_cric_csv(str(tmp_path / 'cols.csv'))
    (tmp_path / 'empty.csv').write_text(HEADER)
    with pytest.raises(CricError, match='no rows'):
        read_cric_csv(str(tmp_path / 'empty.csv'))
    (tmp_path / 'img' / 'f0.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(CricError, match='f0.jpg'):
        build_cric_coco(str(_csv(tmp_path / 'c.csv', rows)),
                        [str(tmp_path / 'img')])


def test_tool_on_real_cric_fields(tmp_path, shared_data):
    """The quickstart's data step on real fields: the shared CSV restricted
    to 24 fields, symlinked images, a set that CervicalCocoDataset loads;
    an existing output is never overwritten without --overwrite."""
    cric = shared_data / 'cric_cervix'
    lines = (cric / 'classifications.csv').read_text().splitlines()
    by_field = {}
    for line in lines[1:]:
        by_field.setdefault(line.split(',')[1], []).append(line)
    # 24 fields that cover every abnormal class at least 3 times
    chosen, seen = [], Counter()
    for f, ls in sorted(by_field.items()):
        classes = {line.split(',')[4] for line in ls}
        if any(seen[c] < 3 for c in classes if c in ABNORMAL_TBS) or \
                len(chosen) < 12:
            chosen.append(f)
            seen.update(c for c in classes if c in ABNORMAL_TBS)
        if len(chosen) >= 24 and all(seen[c] >= 3 for c in ABNORMAL_TBS):
            break
    small = tmp_path / 'small.csv'
    small.write_text('\n'.join([lines[0]] + [
        line for f in chosen for line in by_field[f]]) + '\n')
    out = tmp_path / 'cric'
    args = [sys.executable, 'tools/dataset_converters/cric_to_coco.py', '--csv',
            small, '--img-dir', cric / 'images', '--img-dir', cric / 'native',
            '--out-dir', out]
    proc = run_tool(args)
    assert 'boxes per class' in proc.stdout
    coco = {sp: json.loads((out / 'annotations' / f'{sp}.json').read_text())
            for sp in ('train', 'val', 'test')}
    names = [im['file_name'] for c in coco.values() for im in c['images']]
    assert len(names) == len(set(names)) == len(chosen)
    for sp, c in coco.items():
        cats = {a['bethesda_class'] for a in c['annotations']}
        assert set(ABNORMAL_TBS) <= cats, sp
        for im in c['images']:
            link = out / 'images' / im['file_name']
            assert link.is_symlink() and link.resolve().is_file()
            with Image.open(link) as pil:
                assert pil.size == (im['width'], im['height'])
    from cervdet.datasets import CervicalCocoDataset
    ds = CervicalCocoDataset(
        data_root=str(out), ann_file='annotations/train.json',
        data_prefix=dict(img='images/'), pipeline=[], test_mode=False)
    assert len(ds) == len(coco['train']['images'])
    # a second run refuses to overwrite
    before = (out / 'annotations' / 'train.json').read_bytes()
    proc = run_tool(args, check=False)
    assert proc.returncode == 2 and 'exists' in proc.stderr
    assert (out / 'annotations' / 'train.json').read_bytes() == before
