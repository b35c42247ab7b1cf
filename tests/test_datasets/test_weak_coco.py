"""WeakCocoDataset: image-level labels (and mixed supervision) from COCO."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from cervdet.datasets import (
    BETHESDA_CLASSES,
    WEAK_META_KEYS,
    WEAK_TEST_META_KEYS,
    WeakCocoDataset,
    select_box_images,
)


def _write_coco(root: Path, num_images: int = 10, negatives=(1, 4, 7)):
    """Images 0..n-1 (64x48); positives get 1-3 boxes of cycling classes."""
    img_dir = root / 'images' / 'train'
    img_dir.mkdir(parents=True)
    images, anns = [], []
    for i in range(num_images):
        name = f'img{i}.png'
        cv2.imwrite(str(img_dir / name), np.full((48, 64, 3), 200, np.uint8))
        images.append(dict(id=i, file_name=name, width=64, height=48))
        if i in negatives:
            continue
        for k in range(1 + i % 3):
            anns.append(dict(id=len(anns) + 1, image_id=i,
                             category_id=1 + (i + 2 * k) % 5,
                             bbox=[2 + 10 * k, 3, 8, 9], area=72, iscrowd=0))
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=j + 1, name=n)
                            for j, n in enumerate(BETHESDA_CLASSES)])
    path = root / 'ann.json'
    path.write_text(json.dumps(coco))
    return path, coco


def _labels_from_coco(coco):
    out = {im['id']: set() for im in coco['images']}
    for a in coco['annotations']:
        out[a['image_id']].add(a['category_id'] - 1)  # ids 1..5 -> 0..4
    return {k: sorted(v) for k, v in out.items()}


def _build(path, root, **kw):
    return WeakCocoDataset(ann_file=str(path),
                           data_prefix=dict(img=str(root / 'images' /
                                                    'train') + '/'),
                           pipeline=[], **kw)


def _infos(ds):
    return {ds.get_data_info(i)['img_id']: ds.get_data_info(i)
            for i in range(len(ds))}


def test_image_labels_of_the_real_mosaic_file(tiny_mosaic):
    ds = WeakCocoDataset(data_root=str(tiny_mosaic),
                         ann_file='annotations/train.json',
                         data_prefix=dict(img='images/train/'), pipeline=[])
    coco = json.loads((tiny_mosaic / 'annotations/train.json').read_text())
    names = {c['id']: c['name'] for c in coco['categories']}
    expected = {im['id']: set() for im in coco['images']}
    for a in coco['annotations']:
        expected[a['image_id']].add(
            BETHESDA_CLASSES.index(names[a['category_id']]))
    infos = _infos(ds)
    assert len(infos) == len(coco['images'])  # negatives stay
    assert any(not v for v in expected.values())
    for img_id, info in infos.items():
        assert info['img_labels'] == sorted(expected[img_id])
        assert info['instances'] == [] and info['has_boxes'] is False


def test_labels_negatives_and_box_fraction(tmp_path):
    path, coco = _write_coco(tmp_path)
    expected = _labels_from_coco(coco)
    full = {k: v['instances'] for k, v in _infos(
        WeakCocoDataset(ann_file=str(path), pipeline=[], test_mode=True,
                        data_prefix=dict(img=str(tmp_path / 'images/train')
                                         + '/'))).items()}
    ds = _build(path, tmp_path)
    infos = _infos(ds)
    assert len(infos) == 10
    for img_id, info in infos.items():
        assert info['img_labels'] == expected[img_id]
        assert info['instances'] == [] and not info['has_boxes']
    assert [infos[i]['img_labels'] for i in (1, 4, 7)] == [[], [], []]

    # mixed supervision: stratified, reproducible, nested in the fraction
    half = _infos(_build(path, tmp_path, box_fraction=0.5, box_seed=3))
    boxed = {k for k, v in half.items() if v['has_boxes']}
    pos_boxed = boxed - {1, 4, 7}
    assert len(pos_boxed) == round(0.5 * 7) and len(boxed - pos_boxed) == 2
    for k, v in half.items():
        assert v['instances'] == (full[k] if k in boxed else [])
        assert v['img_labels'] == expected[k]  # labels whatever the boxes
    again = _infos(_build(path, tmp_path, box_fraction=0.5, box_seed=3))
    assert {k for k, v in again.items() if v['has_boxes']} == boxed
    more = _infos(_build(path, tmp_path, box_fraction=0.8, box_seed=3))
    assert boxed <= {k for k, v in more.items() if v['has_boxes']}
    seeds = {frozenset(k for k, v in _infos(_build(
        path, tmp_path, box_fraction=0.5, box_seed=s)).items()
        if v['has_boxes']) for s in range(6)}
    assert len(seeds) > 1  # the seed matters
    every = _infos(_build(path, tmp_path, box_fraction=1.0))
    assert all(v['has_boxes'] and v['instances'] == full[k]
               for k, v in every.items())


def test_select_box_images_ignores_file_order():
    ids = np.arange(20) * 7
    pos = ids % 3 != 0
    keep = select_box_images(ids, pos, 0.3, seed=1)
    perm = np.random.default_rng(0).permutation(20)
    keep_perm = select_box_images(ids[perm], pos[perm], 0.3, seed=1)
    assert set(ids[keep]) == set(ids[perm][keep_perm])
    assert keep[pos].sum() == round(0.3 * pos.sum())
    assert keep[~pos].sum() == round(0.3 * (~pos).sum())


def test_bad_arguments(tmp_path):
    path, _ = _write_coco(tmp_path)
    with pytest.raises(ValueError, match='box_fraction'):
        _build(path, tmp_path, box_fraction=1.5)
    with pytest.raises(ValueError, match='negative images'):
        _build(path, tmp_path, filter_cfg=dict(filter_empty_gt=True))


def _pipeline(train: bool, num=300):
    flip = [dict(type='RandomFlip', prob=1.0)] if train else []
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadProposals', num_max_proposals=num),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='ProposalBroadcaster',
             transforms=[dict(type='Resize', scale=(512, 512),
                              keep_ratio=True)] + flip),
        dict(type='PackDetInputs',
             meta_keys=WEAK_META_KEYS if train else WEAK_TEST_META_KEYS)
    ]


@pytest.fixture(scope='module')
def tiny_proposal_files(tiny_mosaic, tmp_path_factory):
    """Proposal files of the tiny mosaic's train and val splits."""
    from cervdet.datasets import proposals as gp
    out = tmp_path_factory.mktemp('weak_proposals')
    cfg = gp.ProposalConfig(max_per_img=400)
    for split in ('train', 'val'):
        gp.generate_for_coco(tiny_mosaic / 'annotations' / f'{split}.json',
                             tiny_mosaic / 'images' / split,
                             out / f'{split}.pkl', cfg, progress=False)
    return out


def test_full_pipeline_with_proposals(tiny_mosaic, tiny_proposal_files):
    with open(tiny_proposal_files / 'train.pkl', 'rb') as f:
        raw = pickle.load(f)
    ds = WeakCocoDataset(data_root=str(tiny_mosaic),
                         ann_file='annotations/train.json',
                         data_prefix=dict(img='images/train/'),
                         proposal_file=str(tiny_proposal_files / 'train.pkl'),
                         box_fraction=0.5, pipeline=_pipeline(True))
    seen_pos = seen_neg = False
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        sample = ds[i]['data_samples']
        assert sample.img_labels == info['img_labels']
        assert sample.has_boxes == info['has_boxes']
        assert len(sample.gt_instances) == len(info['instances'])
        entry = raw['train/' + Path(info['img_path']).name]
        n = min(300, len(entry['bboxes']))
        props = sample.proposals.bboxes.numpy()
        assert props.shape == (n, 4)
        # 256 -> 512 (scale 2), then flipped horizontally, like the image
        x1, y1, x2, y2 = (entry['bboxes'][:n] * 2).T
        np.testing.assert_allclose(props, np.stack([512 - x2, y1, 512 - x1,
                                                    y2], 1), atol=1e-3)
        np.testing.assert_allclose(sample.proposals.scores.numpy(),
                                   entry['scores'][:n])
        seen_pos |= bool(info['img_labels'])
        seen_neg |= not info['img_labels']
    assert seen_pos and seen_neg


def test_test_pipeline_keeps_boxes_and_instances(tiny_mosaic,
                                                 tiny_proposal_files):
    ds = WeakCocoDataset(data_root=str(tiny_mosaic),
                         ann_file='annotations/val.json',
                         data_prefix=dict(img='images/val/'),
                         proposal_file=str(tiny_proposal_files / 'val.pkl'),
                         test_mode=True, pipeline=_pipeline(False, num=None))
    idx = next(i for i in range(len(ds))
               if ds.get_data_info(i)['img_labels'])
    info = ds.get_data_info(idx)
    assert all(ds.get_data_info(i)['has_boxes'] for i in range(len(ds)))
    assert len(info['instances']) > 0
    sample = ds[idx]['data_samples']
    assert sample.instances == info['instances']  # original coordinates
    assert len(sample.proposals) == len(info['proposals']['bboxes'])


def test_proposal_file_errors(tiny_mosaic, tiny_proposal_files, tmp_path):
    kw = dict(data_root=str(tiny_mosaic), ann_file='annotations/train.json',
              data_prefix=dict(img='images/train/'), pipeline=[])
    # proposals of another split: names the file, the keys and the fix
    with pytest.raises(ValueError, match='no proposals for .*generate_'
                                         'proposals.py'):
        WeakCocoDataset(proposal_file=str(tiny_proposal_files / 'val.pkl'),
                        **kw)
    bad = tmp_path / 'bad.pkl'
    with open(tiny_proposal_files / 'train.pkl', 'rb') as f:
        data = pickle.load(f)
    key = sorted(data)[0]
    data[key] = dict(bboxes=np.zeros((3, 5), np.float32))
    with open(bad, 'wb') as f:
        pickle.dump(data, f)
    with pytest.raises(ValueError, match=f"entry '{key}' needs"):
        WeakCocoDataset(proposal_file=str(bad), **kw)
    with pytest.raises(FileNotFoundError, match='proposal_file'):
        WeakCocoDataset(proposal_file='proposals/none.pkl', **kw)
