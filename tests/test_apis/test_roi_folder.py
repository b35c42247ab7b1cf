"""Tests of cervdet.apis.infer_roi_images / summarize_roi_results (the loop
of tools/roi_cls/infer_rois.py, whose command line is tested in
tests/test_tools/test_roi_cls_infer.py) on the tiny real-crop ROI assets of
:func:`cervdet.testing.make_tiny_roi_assets`."""
import json
import shutil

import numpy as np
import pytest

from cervdet.apis import (
    ROIInferencer,
    infer_roi_images,
    load_coco_boxes,
    summarize_roi_results,
)
from cervdet.testing.roi_assets import NAMES, make_tiny_roi_assets


@pytest.fixture(scope='module')
def assets(shared_data, tmp_path_factory):
    return make_tiny_roi_assets(tmp_path_factory.mktemp('roi_folder_api'),
                                shared_data / 'cric_crops_bethesda')


def test_summarize_roi_results():
    rows = [dict(roi_class='LSIL'), dict(roi_class=None, error='E: x'),
            dict(roi_class=None, reason='no cell box given'),
            dict(roi_class='LSIL'), dict(roi_class='NILM')]
    assert summarize_roi_results(rows, NAMES, 2.0) == dict(
        num_rois=5, num_classified=3, num_errors=1, num_without_cells=1,
        class_counts=dict(NILM=1, LSIL=2, HSIL=0), seconds=2.0,
        rois_per_second=2.5)


def test_infer_roi_images_rows_and_files(assets, tmp_path):
    src = sorted((assets['root'] / 'images' / 'test').glob('*.jpg'))
    folder = tmp_path / 'in'
    folder.mkdir()
    for p in src:
        shutil.copy(p, folder / p.name)
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    (folder / 'extra.jpg').write_bytes(src[0].read_bytes())  # not in ann
    images = sorted(str(p) for p in folder.glob('*.jpg'))
    ann = assets['root'] / 'annotations' / 'test.json'
    inf = ROIInferencer(assets['cached_cfg'], assets['cached_ckpt'],
                        encoder_checkpoint=str(assets['encoder_ckpt']),
                        encoder_checkpoint_prefix='backbone.')
    out = tmp_path / 'out'
    rows = infer_roi_images(inf, images, str(out), input_root=str(folder),
                            boxes_of=load_coco_boxes(str(ann)),
                            ann_file=str(ann), pictures=False,
                            progress=False)
    assert [r['img_path'] for r in rows] == images
    by_stem = {r['stem']: r for r in rows}
    assert 'corrupt' in by_stem['broken']['error']
    assert by_stem['extra']['roi_class'] is None
    assert by_stem['extra']['error'] == (
        f'ValueError: no entry in --ann-file {ann} for extra.jpg')
    coco = json.loads(ann.read_text())
    for img in coco['images']:
        r = by_stem[img['file_name'][:-4]]
        assert r['roi_class'] in NAMES and 'error' not in r
        assert r['gt_roi_class'] == img['roi_label']
        expect = [[x, y, x + w, y + h] for x, y, w, h in (
            a['bbox'] for a in coco['annotations']
            if a['image_id'] == img['id'])]
        np.testing.assert_allclose([c['bbox'] for c in r['cells']], expect,
                                   atol=0.01)
        assert all('gt_cell_class' in c for c in r['cells'])
        assert 'vis_path' not in r
    for r in rows:  # one file per row, the same dict
        assert json.loads((out / 'rois' / f'{r["stem"]}.json')
                          .read_text()) == r
    assert not (out / 'vis').exists()
    summary = summarize_roi_results(rows, inf.classes, 1.0)
    assert (summary['num_rois'], summary['num_classified'],
            summary['num_errors']) == (len(src) + 2, len(src), 2)
