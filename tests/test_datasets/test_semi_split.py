"""Tests of cervdet.datasets.semi_split and its command line
tools/dataset_converters/split_semi.py on the tiny mosaic set and
hand-made files: the paper's protocol (one constant unlabeled set, nested
labeled fractions of the rest; Chai et al. Sec. 3.2), the remainder option,
groups, a separate unlabeled file and a file of the CRIC COCO contract."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cervdet.datasets import semi_split as ss
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'split_semi.py'
PERCENTS = (25, 50, 75, 100)


def _main(args):
    """Run the command line with ``args``; its completed process."""
    return run_tool([sys.executable, TOOL, *args], check=False)


def _ids(path: Path) -> set:
    return {im['id'] for im in json.loads(path.read_text())['images']}


def _positive_ids(coco: dict) -> set:
    return {a['image_id'] for a in coco['annotations']}


@pytest.fixture(scope='module')
def split(tiny_mosaic, tmp_path_factory):
    """The remainder-protocol split of the mosaic train file (CLI)."""
    ann = tiny_mosaic / 'annotations' / 'train.json'
    out = tmp_path_factory.mktemp('semi') / 'semi'
    assert _main([str(ann), '--out-dir', str(out), '--seed', '3',
                  '--protocol', 'remainder']).returncode == 0
    return ann, out


@pytest.fixture(scope='module')
def pool_split(tiny_mosaic, tmp_path_factory):
    """The default (paper) split of the mosaic train file (CLI)."""
    ann = tiny_mosaic / 'annotations' / 'train.json'
    out = tmp_path_factory.mktemp('semi_pool') / 'semi'
    assert _main([str(ann), '--out-dir', str(out), '--seed', '3']).returncode == 0
    return ann, out


def test_pool_protocol_constant_unlabeled_set(pool_split):
    ann, out = pool_split
    src = json.loads(ann.read_text())
    all_ids = {im['id'] for im in src['images']}
    pool = json.loads(ss.pool_path(out).read_text())
    pool_ids = {im['id'] for im in pool['images']}
    assert pool['annotations'] == [] and pool['categories'] == \
        src['categories']
    # 50 % held out, stratified: round half up per stratum
    pos, n = _positive_ids(src), len(src['images'])
    n_pos = len(pos & all_ids)
    k_pos = min(max(int(np.floor(n_pos / 2 + .5)), 1), n_pos - 1)
    assert len(pool_ids & pos) == k_pos
    assert len(pool_ids - pos) == int(np.floor((n - n_pos) / 2 + .5))
    rest = all_ids - pool_ids
    labeled = []
    for p in PERCENTS:
        lab_path, unl_path = ss.output_paths(out, p)
        assert unl_path == ss.pool_path(out)  # the same file for every row
        lab_ids = _ids(lab_path)
        assert lab_ids <= rest and not lab_ids & pool_ids
        k_pos = max(1, int(np.floor(p / 100 * len(rest & pos) + .5)))
        assert len(lab_ids & pos) == k_pos
        assert len(lab_ids - pos) == int(
            np.floor(p / 100 * len(rest - pos) + .5))
        labeled.append(lab_ids)
    assert labeled[-1] == rest  # 100 %: all labeled + the same unlabeled
    for small, large in zip(labeled, labeled[1:]):
        assert small <= large
    assert not list(out.glob('train_unlabeled_*.json'))


def test_pool_and_fractions_by_hand():
    """100 positives, 40 negatives; a 25 % pool; labeled 10 / 50 % of the
    other 75 + 30 images."""
    coco = dict(images=[dict(id=i) for i in range(140)],
                annotations=[dict(id=i, image_id=i, category_id=1)
                             for i in range(100)],
                categories=[dict(id=1, name='HSIL')])
    pool = ss.split_pool(coco, 25., seed=2)
    assert pool[:100].sum() == 25 and pool[100:].sum() == 10
    masks = ss.split_semi(coco, (10, 50), seed=2, exclude=pool)
    for p, n_pos, n_neg in ((10, 8, 3), (50, 38, 15)):  # half up
        assert masks[p][:100].sum() == n_pos, p
        assert masks[p][100:].sum() == n_neg, p
        assert not (masks[p] & pool).any()
    assert (masks[10] <= masks[50]).all()
    with pytest.raises(ValueError, match='unlabeled_percent'):
        ss.split_pool(coco, 100.)


def test_group_by_keeps_groups_together():
    """Images of one patient never straddle the labeled / unlabeled line."""
    images = [dict(id=i, patient=f'p{i // 3}') for i in range(60)]
    coco = dict(images=images,
                annotations=[dict(id=i, image_id=i, category_id=1)
                             for i in range(0, 60, 2)],
                categories=[dict(id=1, name='HSIL')])
    groups = ss.image_groups(coco, 'patient')
    assert len(set(groups.tolist())) == 20
    pool = ss.split_pool(coco, 50., 0, groups)
    masks = ss.split_semi(coco, (25, 100), 0, exclude=pool, groups=groups)
    patients = np.asarray([im['patient'] for im in images])
    for mask in [pool] + list(masks.values()):
        for pat in set(patients):
            assert len(set(mask[patients == pat].tolist())) == 1
    assert (masks[100] | pool).all() and not (masks[100] & pool).any()
    coco['images'][5].pop('patient')
    with pytest.raises(ss.CocoSplitError, match='images\\[5\\].*"patient"'):
        ss.image_groups(coco, 'patient', 'x.json')


def test_separate_unlabeled_file(tiny_mosaic, tmp_path):
    ann = tiny_mosaic / 'annotations' / 'train.json'
    src = json.loads(ann.read_text())
    other = dict(images=[dict(id=1, file_name='u1.png', width=8, height=8),
                         dict(id=2, file_name='u2.png', width=8, height=8)],
                 annotations=[], categories=[])
    unl = tmp_path / 'unlabeled.json'
    unl.write_text(json.dumps(other))
    out = tmp_path / 'semi'
    assert _main([str(ann), '--out-dir', str(out), '--unlabeled-ann',
                  str(unl), '--percents', '50', '100']).returncode == 0
    pool = json.loads(ss.pool_path(out).read_text())
    assert [im['file_name'] for im in pool['images']] == ['u1.png', 'u2.png']
    assert pool['categories'] == src['categories']
    # every train image can be labeled
    assert _ids(ss.output_paths(out, 100)[0]) == {im['id']
                                                  for im in src['images']}
    # a shared image is refused, naming both files
    other['images'].append(dict(src['images'][0]))
    unl.write_text(json.dumps(other))
    with pytest.raises(ss.CocoSplitError, match='separate set'):
        ss._check_separate(src, other, ann, unl)
    assert _main([str(ann), '--out-dir', str(tmp_path / 'o2'),
                  '--unlabeled-ann', str(unl)]).returncode == 1


def test_cric_contract_file(tmp_path):
    """A file of the CRIC COCO contract (abnormal5, per-field images with
    other_points, annotations with point / cric_cell_id / bethesda_class):
    split per field; labeled files keep every key, unlabeled images lose
    their label keys."""
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(
        ['ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC'])]
    images, anns = [], []
    for i in range(12):
        images.append(dict(
            id=i + 1, file_name=f'{i:032x}.jpg', width=688, height=510,
            cric_image_id=100 + i, source_size=[1376, 1020],
            other_points=[dict(point=[10., 20.], bethesda_class='NILM',
                               cric_cell_id=5000 + i)]))
        for j in range(i % 3):  # a third of the fields are negatives
            anns.append(dict(
                id=len(anns) + 1, image_id=i + 1, category_id=1 + j,
                bbox=[10., 10., 50., 50.], area=2500., iscrowd=0,
                point=[35., 35.], cric_cell_id=9000 + len(anns),
                bethesda_class=cats[j]['name']))
    ann = tmp_path / 'train.json'
    ann.write_text(json.dumps(dict(images=images, annotations=anns,
                                   categories=cats)))
    out = tmp_path / 'semi'
    assert _main([str(ann), '--out-dir', str(out), '--group-by',
                  'cric_image_id']).returncode == 0
    pool = json.loads(ss.pool_path(out).read_text())
    assert len(pool['images']) == 6
    assert all('other_points' not in im and 'cric_image_id' in im
               for im in pool['images'])
    lab = json.loads(ss.output_paths(out, 100)[0].read_text())
    assert len(lab['images']) == 6
    assert all('other_points' in im for im in lab['images'])
    assert lab['annotations'] and all(
        {'point', 'cric_cell_id', 'bethesda_class'} <= set(a)
        for a in lab['annotations'])
    assert lab['categories'] == cats
    pool_fields = {im['cric_image_id'] for im in pool['images']}
    assert not pool_fields & {im['cric_image_id'] for im in lab['images']}


def test_disjoint_complete_sizes_and_annotations(split):
    ann, out = split
    src = json.loads(ann.read_text())
    all_ids = {im['id'] for im in src['images']}
    pos, n = _positive_ids(src), len(src['images'])
    n_pos = len(pos & all_ids)
    assert 0 < n_pos < n  # the fixture has negatives and positives
    for p in PERCENTS:
        lab_path, unl_path = ss.output_paths(out, p, 'remainder')
        lab, unl = json.loads(lab_path.read_text()), \
            json.loads(unl_path.read_text())
        lab_ids, unl_ids = _ids(lab_path), _ids(unl_path)
        assert not lab_ids & unl_ids and lab_ids | unl_ids == all_ids
        # stratified: each stratum rounded half up (>= 1 positive)
        k_pos = max(1, int(np.floor(p / 100 * n_pos + .5)))
        k_neg = int(np.floor(p / 100 * (n - n_pos) + .5))
        assert len(lab_ids & pos) == k_pos
        assert len(lab_ids - pos) == k_neg
        # labeled: all and only the annotations of its images
        assert sorted(a['id'] for a in lab['annotations']) == sorted(
            a['id'] for a in src['annotations'] if a['image_id'] in lab_ids)
        assert unl['annotations'] == []
        assert lab['categories'] == src['categories'] == unl['categories']
        # file order kept
        order = [im['id'] for im in src['images']]
        assert [im['id'] for im in lab['images']] == [
            i for i in order if i in lab_ids]
    assert _ids(ss.output_paths(out, 100, 'remainder')[0]) == all_ids
    assert _ids(ss.output_paths(out, 100, 'remainder')[1]) == set()


def test_nested(split):
    _, out = split
    labeled = [_ids(ss.output_paths(out, p, 'remainder')[0]) for p in PERCENTS]
    for small, large in zip(labeled, labeled[1:]):
        assert small < large


def test_negatives_stratified_on_larger_file():
    """100 positives, 40 negatives: every fraction keeps the 5:2 ratio."""
    coco = dict(images=[dict(id=i) for i in range(140)],
                annotations=[dict(id=i, image_id=i, category_id=1)
                             for i in range(100)],
                categories=[dict(id=1, name='HSIL')])
    masks = ss.split_semi(coco, (10, 25, 50), seed=1)
    for p, mask in masks.items():
        assert mask[:100].sum() == round(p) and mask[100:].sum() == 0.4 * p
    assert (masks[10] <= masks[25]).all() and (masks[25] <= masks[50]).all()


def test_deterministic_and_seed_dependent(split, tmp_path):
    ann, out = split
    again = tmp_path / 'again'
    assert _main([str(ann), '--out-dir', str(again), '--seed', '3',
                  '--protocol', 'remainder']).returncode == 0
    for p in PERCENTS:
        for a, b in zip(ss.output_paths(out, p, 'remainder'),
                        ss.output_paths(again, p, 'remainder')):
            assert a.read_text() == b.read_text()
    coco = ss.load_coco(ann)
    seeds = {tuple(np.flatnonzero(ss.split_semi(coco, [50], s)[50]))
             for s in range(6)}
    assert len(seeds) > 1


def test_refuses_overwrite(split):
    ann, out = split
    before = ss.output_paths(out, 25, 'remainder')[0].read_text()
    proc = _main([str(ann), '--out-dir', str(out), '--seed', '4',
                  '--protocol', 'remainder'])
    assert proc.returncode == 1
    assert '--force-overwrite' in proc.stderr
    assert ss.output_paths(out, 25, 'remainder')[0].read_text() == before
    proc = _main([str(ann), '--out-dir', str(out), '--seed', '3',
                  '--protocol', 'remainder', '--force-overwrite'])
    assert proc.returncode == 0
    assert ss.output_paths(out, 25, 'remainder')[0].read_text() == before
    printed = proc.stdout
    assert '25%  labeled' in printed and 'unlabeled' in printed


@pytest.mark.parametrize('text,match', [
    ('', 'file is empty'),
    ('{"images": [{"id": 1}', 'not valid JSON'),
    ('[]', 'top level'),
    ('{"images": [], "annotations": [], "categories": []}', '"images"'),
    ('{"images": [{"id": 1}], "annotations": []}', '"categories"'),
    ('{"images": [{"id": 1}, {"id": 1}], "categories": []}', 'duplicate'),
    ('{"images": [{"id": 1}], "categories": [], "annotations": '
     '[{"id": 1, "image_id": 7}]}', 'unknown image ids'),
])
def test_clear_errors(tmp_path, text, match):
    ann = tmp_path / 'bad.json'
    ann.write_text(text)
    with pytest.raises(ss.CocoSplitError, match=match):
        ss.load_coco(ann)
    proc = _main([str(ann), '--out-dir', str(tmp_path / 'o')])
    assert proc.returncode == 1
    err = proc.stderr
    assert 'bad.json' in err and match.strip('"') in err
    assert not (tmp_path / 'o').exists()


def test_mmdet_coco_dataset_loads_outputs(split, tiny_mosaic):
    """Both outputs load as in mmdet's semi_coco_detection base config."""
    from mmdet.datasets import CocoDataset
    _, out = split
    src = json.loads((tiny_mosaic / 'annotations' / 'train.json').read_text())
    classes = tuple(c['name'] for c in src['categories'])
    lab_path, unl_path = ss.output_paths(out, 25, 'remainder')
    common = dict(data_root=str(tiny_mosaic), metainfo=dict(classes=classes),
                  data_prefix=dict(img='images/train/'), pipeline=[])
    labeled = CocoDataset(ann_file=str(lab_path),
                          filter_cfg=dict(filter_empty_gt=False), **common)
    unlabeled = CocoDataset(ann_file=str(unl_path),
                            filter_cfg=dict(filter_empty_gt=False), **common)
    lab_infos = [labeled.get_data_info(i) for i in range(len(labeled))]
    unl_infos = [unlabeled.get_data_info(i) for i in range(len(unlabeled))]
    assert {d['img_id'] for d in lab_infos} == _ids(lab_path)
    assert {d['img_id'] for d in unl_infos} == _ids(unl_path)
    assert all(not d['instances'] for d in unl_infos)
    assert sum(len(d['instances']) for d in lab_infos) == len(
        json.loads(lab_path.read_text())['annotations'])
    assert all(Path(d['img_path']).is_file() for d in lab_infos + unl_infos)


def test_mmdet_semi_base_config_pipelines(split, tiny_mosaic):
    """The 25 % files in mmdet's semi_coco_detection.py datasets, with its
    sup / unsup pipelines (LoadEmptyAnnotations, MultiBranch)."""
    import mmdet
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    base = Config.fromfile(Path(mmdet.__file__).parent / '.mim' / 'configs' /
                           '_base_' / 'datasets' / 'semi_coco_detection.py')
    _, out = split
    src = json.loads((tiny_mosaic / 'annotations' / 'train.json').read_text())
    classes = tuple(c['name'] for c in src['categories'])
    lab_path, unl_path = ss.output_paths(out, 25, 'remainder')
    items = {}
    for key, ann in (('labeled_dataset', lab_path),
                     ('unlabeled_dataset', unl_path)):
        cfg = base[key].copy()
        cfg.update(data_root=str(tiny_mosaic), ann_file=str(ann),
                   data_prefix=dict(img='images/train/'),
                   metainfo=dict(classes=classes))
        dataset = DATASETS.build(cfg)
        assert len(dataset) > 0
        items[key] = dataset[0]
    # MultiBranch fills every branch, None where the pipeline has none
    sup = items['labeled_dataset']['data_samples']
    assert sup['sup'] is not None and sup['unsup_teacher'] is None
    unsup = items['unlabeled_dataset']['data_samples']
    assert unsup['sup'] is None
    assert len(unsup['unsup_teacher'].gt_instances) == 0
    assert len(unsup['unsup_student'].gt_instances) == 0
