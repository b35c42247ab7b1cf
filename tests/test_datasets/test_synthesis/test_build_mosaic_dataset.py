"""Tests of cervdet.datasets.synthesis (mosaic builds) on the real crops
(the command line: tests/test_tools/test_dataset_converters/test_build_mosaic.py)."""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import cervdet.datasets.synthesis as bm
from cervdet.datasets.classes import BETHESDA_CLASSES, TCT11_CLASSES
from cervdet.datasets.coco_checks import check_coco

SMALL = dict(img_size=256, cells_per_image=(4, 6), num_train=6, num_val=3,
             num_test=3, min_cell_size=24, max_cell_size=96,
             negative_fraction=0.3, progress=False)


def _build(out_dir, data_root, **kw):
    args = dict(SMALL, source='bethesda', preset='512', background='paper', seed=3)
    args.update(kw)
    return bm.build_mosaic_dataset(out_dir, data_root, **args)


def _load(res, split):
    return json.loads(Path(res['annotations'][split]).read_text())


@pytest.fixture(scope='module')
def mosaic(shared_data, tmp_path_factory):
    """A small bethesda mosaic on paper background (seed 3)."""
    return _build(tmp_path_factory.mktemp('mosaic') / 'out', shared_data)


def test_layout_and_valid_coco(mosaic):
    out = Path(mosaic['out_dir'])
    assert (out / 'meta.json').is_file()
    for split, n in zip(bm.SPLITS, (6, 3, 3)):
        coco = _load(mosaic, split)
        ann_file = out / 'annotations' / f'{split}.json'
        assert Path(mosaic['annotations'][split]) == ann_file
        assert len(coco['images']) == n
        for img in coco['images']:
            assert '/' not in img['file_name']
            assert (out / 'images' / split / img['file_name']).is_file()
            assert (img['width'], img['height']) == (256, 256)
        report = check_coco(mosaic['annotations'][split], out / 'images' / split,
                            check_images=True)
        assert report['ok'], report


def test_class_ids_valid(mosaic):
    for split in bm.SPLITS:
        coco = _load(mosaic, split)
        cats = [(c['id'], c['name']) for c in coco['categories']]
        assert cats == list(enumerate(BETHESDA_CLASSES, start=1))
        assert {a['category_id'] for a in coco['annotations']} <= set(range(1, 6))
        assert all(a['iscrowd'] == 0 for a in coco['annotations'])
        ids = [a['id'] for a in coco['annotations']]
        assert len(ids) == len(set(ids))


def test_boxes_inside_and_on_pasted_cells(mosaic):
    """Every box is inside the image and mostly covers non-glass content."""
    out = Path(mosaic['out_dir'])
    n_boxes = 0
    for split in bm.SPLITS:
        coco = _load(mosaic, split)
        for img_info in coco['images']:
            img = cv2.imread(str(out / 'images' / split / img_info['file_name']))
            glass = np.median(img.reshape(-1, 3), axis=0)
            dev = np.abs(img.astype(np.float32) - glass).max(axis=2)
            for a in coco['annotations']:
                if a['image_id'] != img_info['id']:
                    continue
                x, y, w, h = a['bbox']
                assert w > 0 and h > 0
                assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256
                assert 0 < a['area'] <= w * h
                assert (dev[y:y + h, x:x + w] > 15).mean() > 0.2, (split, a)
                n_boxes += 1
    assert n_boxes > 10


def test_all_pasted_content_is_boxed(shared_data, tmp_path):
    """With normals boxed too, everything outside the boxes is glass."""
    res = _build(tmp_path / 'all', shared_data, annotate_normal=True)
    for split in bm.SPLITS:
        coco = _load(res, split)
        assert coco['categories'][-1] == dict(id=6, name='NILM')
        for img_info in coco['images']:
            img = cv2.imread(str(Path(res['images'][split]) / img_info['file_name']))
            near_box = np.zeros(img.shape[:2], bool)
            boxes = [a['bbox'] for a in coco['annotations']
                     if a['image_id'] == img_info['id']]
            assert boxes  # negatives still hold (boxed) normal cells
            for x, y, w, h in boxes:  # + the soft alpha < 0.5 rim
                near_box[max(0, y - 6):y + h + 6, max(0, x - 6):x + w + 6] = True
            glass = np.median(img[~near_box], axis=0)
            dev = np.abs(img.astype(np.float32) - glass).max(axis=2)
            assert np.percentile(dev[~near_box], 99.9) < 20, img_info['file_name']
            glass_dev = dev[~near_box].mean()
            for x, y, w, h in boxes:  # some NILM crops are pale: looser bound
                region = dev[y:y + h, x:x + w]
                assert (region > 8).mean() > 0.1 and region.mean() > 2 * glass_dev


def test_negatives_in_every_split(mosaic):
    for split in bm.SPLITS:
        coco = _load(mosaic, split)
        with_box = {a['image_id'] for a in coco['annotations']}
        ids = {i['id'] for i in coco['images']}
        negatives = {i['id'] for i in coco['images'] if i['negative']}
        assert negatives and negatives == ids - with_box, split
        assert ids - negatives, split


def test_source_crops_disjoint_between_splits(mosaic, shared_data):
    meta = json.loads(Path(mosaic['meta']).read_text())
    pools = {}
    for split in bm.SPLITS:
        c = meta['crops'][split]
        abnormal = {p for ps in c['abnormal'].values() for p in ps}
        pools[split] = set(c['normal']) | abnormal
        assert all((shared_data / p).is_file() for p in pools[split])
        used = set(meta['used_crops'][split])
        assert used and used <= pools[split], split
    for a, b in [('train', 'val'), ('train', 'test'), ('val', 'test')]:
        assert not pools[a] & pools[b]
    # every source crop is in exactly one split
    abnormal, normal = bm.list_source_crops(shared_data, 'bethesda')
    n_all = len(normal) + sum(len(v) for v in abnormal.values())
    assert sum(len(p) for p in pools.values()) == n_all
    assert meta['config']['seed'] == 3 and meta['config']['img_size'] == 256


def test_deterministic_with_seed(mosaic, shared_data, tmp_path):
    again = _build(tmp_path / 'again', shared_data)
    other = _build(tmp_path / 'other', shared_data, seed=4)

    def digest(res, split):
        d = Path(res['images'][split])
        return [hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())]

    for split in bm.SPLITS:
        assert _load(again, split) == _load(mosaic, split)
        assert digest(again, split) == digest(mosaic, split)
    assert _load(other, 'train') != _load(mosaic, 'train')
    m1, m2 = (json.loads(Path(r['meta']).read_text()) for r in (mosaic, other))
    assert m1['crops']['train'] != m2['crops']['train']


def test_refuses_to_overwrite(shared_data, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='--overwrite'):
        _build(out, shared_data, num_train=2, num_val=2, num_test=2)
    assert sorted(p.name for p in out.iterdir()) == ['notes.txt']
    res = _build(out, shared_data, num_train=2, num_val=2, num_test=2, overwrite=True)
    assert (out / 'notes.txt').read_text() == 'mine'
    assert len(_load(res, 'train')['images']) == 2


def test_out_dir_inside_data_root_refused(shared_data):
    with pytest.raises(ValueError, match='inside --data-root'):
        _build(shared_data / 'mosaic', shared_data)
    assert not (shared_data / 'mosaic').exists()


def test_tct11_field_background_annotate_normal(shared_data, tmp_path):
    res = _build(tmp_path / 'tct', shared_data, source='tct11', background='field',
                 annotate_normal=True, num_train=3, num_val=2, num_test=2)
    coco = _load(res, 'train')
    names = [c['name'] for c in coco['categories']]
    assert names == list(TCT11_CLASSES) + ['NILM']
    cats = {a['category_id'] for a in coco['annotations']}
    assert len(names) in cats  # NILM boxes written
    assert cats & set(range(1, 12))  # abnormal boxes too
    meta = json.loads(Path(res['meta']).read_text())
    used = {p.split('/')[0] for s in bm.SPLITS for p in meta['used_crops'][s]}
    assert used == {'tct_crops_11class', 'cric_crops_bethesda'}


def test_quilted_background_is_blank_glass(shared_data):
    bank = bm.load_background_bank(shared_data / bm.FIELD_FILE)
    assert len(bank.corners) >= 200
    bg = bm.quilt_background(bank, 300, np.random.default_rng(0)).astype(np.float32)
    assert bg.shape == (300, 300, 3)
    dev = np.abs(bg - bank.colour).max(axis=2)
    # no cell: (almost) every pixel is close to the glass colour
    assert np.percentile(dev, 99.9) < 40
    assert bg.mean() > 220
    # and it is not a flat fill: real texture/noise
    assert bg.std(axis=(0, 1)).max() > 0.5


def test_pasted_box_is_exact_extent():
    """Synthetic crop (dark disc on glass): box = alpha > 0.5 extent = disc."""
    cfg = bm.make_config('bethesda', '512', crop_scale=(1.0, 1.0),
                         min_cell_size=8, max_cell_size=200)
    crop = np.full((80, 80, 3), 245, np.uint8)
    cv2.circle(crop, (40, 40), 25, (90, 60, 120), -1)
    pixels, alpha = bm.prepare_cell(crop, cfg, np.random.default_rng(0))
    canvas = np.full((128, 128, 3), 245, np.uint8)
    bm.paste(canvas, pixels, alpha, 10, 20)
    x, y, w, h = bm.mask_bbox(alpha > 0.5)
    x, y = x + 10, y + 20
    dark = np.nonzero((canvas.astype(int).sum(2) < 600))
    assert abs(x - dark[1].min()) <= 2 and abs(y - dark[0].min()) <= 2
    assert abs(x + w - 1 - dark[1].max()) <= 2 and abs(y + h - 1 - dark[0].max()) <= 2
    assert 48 <= w <= 54 and 48 <= h <= 54


def test_split_items_disjoint_and_complete():
    items = list(range(37))
    parts = bm.split_items(items, (0.7, 0.15, 0.15), np.random.default_rng(0))
    assert sorted(sum(parts, [])) == items
    for part, r in zip(parts, (0.7, 0.15, 0.15)):
        assert abs(len(part) - r * 37) <= 1
    tiny = bm.split_items([1, 2, 3], (0.7, 0.15, 0.15), np.random.default_rng(0))
    assert sorted(map(len, tiny)) == [1, 1, 1]  # every split gets a crop
    assert bm.split_items(items, (0.7, 0.15, 0.15), np.random.default_rng(0)) == parts


def test_invalid_settings_rejected():
    with pytest.raises(ValueError, match='cells-per-image'):
        bm.make_config('bethesda', '512', cells_per_image=(5, 2))
    with pytest.raises(ValueError, match='preset'):
        bm.make_config('bethesda', '768')
    with pytest.raises(ValueError, match='max-cell-size'):
        bm.make_config('bethesda', '512', img_size=128)
