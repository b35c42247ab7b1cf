"""Tests of cervdet.datasets.roi_sets.cric_fields (the library of
tools/dataset_converters/cric_fields_to_roi_set.py): ROIs cut
from the real CRIC fields, labelled by their worst marked cell."""
import json

import pytest

from cervdet.datasets import roi_sets as cf


def test_window_origins():
    assert cf.window_origins(688, 256, 256) == [0, 256, 432]
    assert cf.window_origins(510, 256, 128) == [0, 128, 254]
    assert cf.window_origins(510, 0, 0) == [0]
    assert cf.window_origins(200, 256, 256) == [0]


def test_cut_rois_label_boxes_and_membership():
    cells = [(10., 10., 'NILM', 1), (120., 20., 'ASC-US', 2),
             (150., 90., 'NILM', 3), (60., 60., 'ASC-H', 4),
             (190., 95., 'SCC', 5)]
    # whole field 200 x 100: worst cell SCC -> HSIL; box 20 px clipped
    (roi, ) = cf.cut_rois(cells, 200, 100, 0, 0, box_px=20.)
    assert roi['window'] == [0, 0, 200, 100] and roi['label'] == 'HSIL'
    assert roi['cells'][0]['bbox'] == [0., 0., 20., 20.]  # clipped at 0
    assert roi['cells'][4]['bbox'] == [180., 85., 20., 15.]  # at the edge
    assert [c['cric_cell_id'] for c in roi['cells']] == [1, 2, 3, 4, 5]
    # windows of 100 px: [0, 100) holds cells 1 and 4 (ASC-H -> HSIL),
    # [100, 200) cells 2, 3, 5 (SCC -> HSIL); without 4 and 5 -> LSIL, NILM
    rois = cf.cut_rois(cells, 200, 100, 100, 100, box_px=20.)
    assert [r['window'] for r in rois] == [[0, 0, 100, 100],
                                           [100, 0, 100, 100]]
    assert [r['label'] for r in rois] == ['HSIL', 'HSIL']
    assert rois[1]['cells'][0]['point'] == [20., 20.]  # ROI frame
    mild = [c for c in cells if c[3] not in (4, 5)]
    rois = cf.cut_rois(mild, 200, 100, 100, 100, box_px=20.)
    assert [r['label'] for r in rois] == ['NILM', 'LSIL']
    # min_cells drops the window with one cell
    rois = cf.cut_rois(mild, 200, 100, 100, 100, box_px=20., min_cells=2)
    assert [r['window'][0] for r in rois] == [100]


def test_real_fields_build_and_dataset_reads(shared_data, tmp_path):
    from cervdet.datasets.roi_bag_dataset import ROIBagDataset
    out = tmp_path / 'rois'
    res = cf.build_cric_field_rois(out, data_root=shared_data, roi_size=256,
                                   limit=8, seed=0, progress=False)
    total = sum(c['rois'] for c in res['counts'].values())
    assert total > 8  # several windows per field
    fields = {s: set(json.loads(res['meta'].read_text())['fields'][s])
              for s in ('train', 'val', 'test')}
    assert not (fields['train'] & fields['test'])  # split per field
    coco = json.loads(res['annotations']['train'].read_text())
    # the label is the worst marked cell of the window
    names = {c['id']: c['name'] for c in coco['categories']}
    worst = {}
    for a in coco['annotations']:
        sev = ('NILM', 'LSIL', 'HSIL').index(
            coco['cell_to_roi_class'][names[a['category_id']]])
        worst[a['image_id']] = max(worst.get(a['image_id'], 0), sev)
    for im in coco['images']:
        assert im['roi_label'] == ('NILM', 'LSIL', 'HSIL')[worst[im['id']]]
        assert (im['width'], im['height']) == (256, 256)
    ds = ROIBagDataset(ann_file='annotations/train.json', data_root=str(out),
                       data_prefix=dict(img_path='images/train/'),
                       pipeline=[])
    assert len(ds) == len(coco['images'])
    info = ds[0]
    assert info['num_cells'] >= 1 and (info['cell_labels'] >= 0).all()
    # the class-agnostic file of the cell detector: same boxes, one class
    cells = json.loads((out / 'annotations' / 'cells_train.json').read_text())
    assert cells['categories'] == [dict(id=1, name='cell')]
    assert [a['bbox'] for a in cells['annotations']] == \
        [a['bbox'] for a in coco['annotations']]
    assert {a['category_id'] for a in cells['annotations']} == {1}
    # nothing a user saved is overwritten
    with pytest.raises(FileExistsError, match='--force-overwrite'):
        cf.build_cric_field_rois(out, data_root=shared_data, limit=2,
                                 progress=False)


def test_coco_contract_input(shared_data, tmp_path):
    """Cells from the COCO files of cric_to_coco.py (boxes + other_points)."""
    img_dir = shared_data / 'cric_cervix' / 'images'
    stems = sorted(p.stem for p in img_dir.glob('*.jpg'))[:3]
    coco_dir = tmp_path / 'coco'
    coco_dir.mkdir()
    for split, stem in zip(('train', 'val', 'test'), stems):
        coco = dict(
            images=[dict(id=1, file_name=f'{stem}.jpg', width=688,
                         height=510, other_points=[dict(
                             point=[100., 100.], bethesda_class='NILM',
                             cric_cell_id=7)])],
            annotations=[dict(id=1, image_id=1, category_id=4,
                              bbox=[300, 300, 40, 40], point=[320., 320.],
                              cric_cell_id=8, bethesda_class='HSIL')],
            categories=[dict(id=i + 1, name=n) for i, n in enumerate(
                ('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC'))])
        (coco_dir / f'{split}.json').write_text(json.dumps(coco))
    res = cf.build_cric_field_rois(tmp_path / 'out', coco_dir=coco_dir,
                                   img_dir=img_dir, progress=False)
    out = json.loads(res['annotations']['val'].read_text())
    assert out['images'][0]['roi_label'] == 'HSIL'
    assert sorted(a['cric_cell_id'] for a in out['annotations']) == [7, 8]
    bad = json.loads((coco_dir / 'test.json').read_text())
    del bad['annotations'][0]['bethesda_class']
    (coco_dir / 'test.json').write_text(json.dumps(bad))
    with pytest.raises(ValueError, match='bethesda_class'):
        cf.build_cric_field_rois(tmp_path / 'out2', coco_dir=coco_dir,
                                 img_dir=img_dir, progress=False)
