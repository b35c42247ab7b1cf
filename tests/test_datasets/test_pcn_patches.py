"""cervdet.datasets.pcn_patches and tools/dataset_converters/build_pcn_patches.py
on real-crop mosaics."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cervdet.datasets import pcn_patches as bp
from cervdet.models.layers import crop_patches, patch_regions
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'build_pcn_patches.py'

SIZE = 64


def _splits(root):
    return {s: (root / 'annotations' / f'{s}.json', root / 'images' / s)
            for s in ('train', 'val')}


@pytest.fixture(scope='module')
def patches(tiny_mosaic, tmp_path_factory):
    out = tmp_path_factory.mktemp('pcn_patches') / 'out'
    res = bp.build_pcn_patches(out, _splits(tiny_mosaic), patch_size=SIZE,
                               pos_per_box=3, progress=False)
    return res


def test_layout_counts_and_labels(patches, tiny_mosaic):
    out = Path(patches['out_dir'])
    assert (out / 'classes.txt').read_text().split() == ['normal', 'abnormal']
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['patch'] == dict(size=SIZE, scale=1.5, square=True,
                                 min_size=0., fill_bgr=list(bp.IMAGENET_MEAN_BGR))
    for split in ('train', 'val'):
        lines = (out / 'meta' / f'{split}.txt').read_text().split('\n')[:-1]
        coco = json.loads((tiny_mosaic / 'annotations' / f'{split}.json')
                          .read_text())
        counts = patches['counts'][split]
        # every abnormal box gives pos_per_box positives
        assert counts['abnormal'] == 3 * len(coco['annotations']) > 0
        assert counts['normal'] >= 0.8 * counts['abnormal']
        assert len(lines) == counts['normal'] + counts['abnormal']
        for line in lines:
            rel, label = line.rsplit(' ', 1)
            assert rel.startswith(f'images/{split}/')
            assert rel.split('/')[2] == ('abnormal' if label == '1' else 'normal')
            img = cv2.imread(str(out / rel))
            assert img is not None and img.shape == (SIZE, SIZE, 3)
        sources = patches['sources'][split]
        assert sources.get('cell', 0) > 0 and sources['abnormal_box'] == \
            counts['abnormal']


def test_first_positive_is_the_box_region(patches, tiny_mosaic):
    coco = json.loads((tiny_mosaic / 'annotations' / 'train.json').read_text())
    ann = coco['annotations'][0]
    info = next(i for i in coco['images'] if i['id'] == ann['image_id'])
    img = cv2.imread(str(tiny_mosaic / 'images' / 'train' / info['file_name']))
    x, y, w, h = ann['bbox']
    region = patch_regions(torch.tensor([[x, y, x + w, y + h]]).float(),
                           scale=1.5, square=True)
    expected = crop_patches(
        torch.from_numpy(img).permute(2, 0, 1)[None].float(),
        torch.cat([torch.zeros(1, 1), region], 1), SIZE,
        fill=bp.IMAGENET_MEAN_BGR)[0].permute(1, 2, 0).numpy()
    anns_of_img = [a for a in coco['annotations']
                   if a['image_id'] == ann['image_id']]
    j = [a['id'] for a in anns_of_img].index(ann['id']) * 3  # unjittered copy
    stem = Path(info['file_name']).stem
    patch = cv2.imread(str(Path(patches['out_dir']) / 'images' / 'train' /
                           'abnormal' / f'{stem}_{j:03d}.jpg')).astype(float)
    assert np.abs(patch - expected).mean() < 3.0  # JPEG error only


def test_negatives_avoid_abnormal_cells_and_find_dark_cells():
    img = np.full((200, 200, 3), 235, np.uint8)
    for cx, cy in [(40, 40), (150, 50), (60, 150), (150, 150)]:
        cv2.circle(img, (cx, cy), 12, (90, 60, 120), -1)
    abnormal = np.array([[138., 138., 162., 162.]])  # the cell at (150, 150)
    rng = np.random.default_rng(0)
    boxes, src = bp.sample_negative_boxes(
        img, abnormal, np.zeros((0, 4)), np.array([[24., 24.]]), num=10,
        rng=rng, cell_fraction=0.3, max_iou=0.1)
    assert len(boxes) == 10
    assert src.count('cell') == 3 and src.count('background') == 7
    assert bp.box_iou(boxes, abnormal).max() < 0.1
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    cells = centres[[s == 'cell' for s in src]]
    known = np.array([[40, 40], [150, 50], [60, 150]])
    dist = np.linalg.norm(cells[:, None] - known[None], axis=2).min(1)
    assert (dist < 2).all()  # centred on the normal cells


def test_multiclass_labels_and_dataset_loading(tiny_mosaic, tmp_path):
    res = bp.build_pcn_patches(tmp_path / 'm', _splits(tiny_mosaic),
                               label_mode='multiclass', patch_size=SIZE,
                               pos_per_box=1, progress=False)
    assert res['classes'] == ['normal', 'ASC-US', 'ASC-H', 'LSIL', 'HSIL',
                              'SCC']
    from mmpretrain.datasets import CustomDataset
    ds = CustomDataset(data_root=str(tmp_path / 'm'), ann_file='meta/train.txt',
                       data_prefix='', with_label=True,
                       metainfo=dict(classes=res['classes']), pipeline=[])
    labels = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    coco = json.loads((tiny_mosaic / 'annotations' / 'train.json').read_text())
    expected_pos = sorted(a['category_id'] for a in coco['annotations'])
    assert sorted(label for label in labels if label > 0) == expected_pos


def test_errors_name_the_fix(tiny_mosaic, tmp_path):
    out = tmp_path / 'o'
    bp.build_pcn_patches(out, {'val': _splits(tiny_mosaic)['val']},
                         patch_size=SIZE, progress=False)
    with pytest.raises(FileExistsError, match='--overwrite'):
        bp.build_pcn_patches(out, {'val': _splits(tiny_mosaic)['val']},
                             patch_size=SIZE, progress=False)
    with pytest.raises(FileNotFoundError, match='not found'):
        bp.build_pcn_patches(tmp_path / 'x', {'a': (tmp_path / 'no.json',
                                                    tmp_path)}, progress=False)
    names = ['ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC']
    with pytest.raises(ValueError, match='no abnormal box'):
        bp.build_pcn_patches(tmp_path / 'y', {'val': _splits(tiny_mosaic)['val']},
                             normal_classes=names, progress=False)
    # the command line: an existing --out-dir without --overwrite exits 2
    assert run_tool([sys.executable, TOOL, '--coco-root', str(tiny_mosaic),
                     '--splits', 'val', '--out-dir', str(out)],
                    check=False).returncode == 2
