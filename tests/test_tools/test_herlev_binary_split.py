"""Tests of tools/dataset_converters/herlev_binary_split.py and its logic,
cervdet.datasets.converters.herlev, on real Herlev."""
import json
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

import cervdet.datasets.converters.herlev as hbs
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'herlev_binary_split.py'
CONFIG = (ROOT / 'configs' / 'roi_cls' / 'cell_encoder' /
          'cell-encoder_r18-w32_gap_adam-30e_1xb32_herlev-binary-64.py')


def _read(path):
    items = [line.split(' ') for line in path.read_text().splitlines()]
    return [(p, int(label)) for p, label in items]


@pytest.fixture(scope='module')
def split_dir(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp('herlev_binary')
    run_tool([sys.executable, TOOL, '--data-root', shared_data,
              '--out-dir', out, '--seed', '3'])
    return out


def test_split_folder_counts_and_disjoint():
    rng = np.random.default_rng(0)
    tr, va = hbs.split_folder(10, 0.2, rng)
    assert len(va) == 2 and len(tr) == 8
    assert set(tr).isdisjoint(va) and set(tr) | set(va) == set(range(10))
    assert list(tr) == sorted(tr)
    # round half up: 0.2 * 57 = 11.4 -> 11, 0.2 * 58 = 11.6 -> 12
    assert len(hbs.split_folder(57, 0.2, rng)[1]) == 11
    assert len(hbs.split_folder(58, 0.2, rng)[1]) == 12
    # tiny strata keep one item on each side
    tr, va = hbs.split_folder(2, 0.1, rng)
    assert len(tr) == 1 and len(va) == 1
    with pytest.raises(hbs.HerlevSplitError, match='val-ratio'):
        hbs.split_folder(10, 1.0, rng)


def test_split_is_stratified_complete_and_relative(split_dir, shared_data):
    train, val = _read(split_dir / 'train.txt'), _read(split_dir / 'val.txt')
    meta = json.loads((split_dir / 'meta.json').read_text())
    assert (split_dir / 'classes.txt').read_text().split() == [
        'normal', 'abnormal']
    paths_tr = {p for p, _ in train}
    paths_va = {p for p, _ in val}
    assert paths_tr.isdisjoint(paths_va)
    all_files = {f'herlev/{d.name}/{f.name}'
                 for d in (shared_data / 'herlev').iterdir() if d.is_dir()
                 for f in d.iterdir()}
    assert paths_tr | paths_va == all_files  # complete, relative paths
    for p, label in train + val:
        assert (shared_data / p).is_file()
        folder = p.split('/')[1]
        assert label == (0 if folder.startswith('normal_') else 1)
    # per source folder: round(0.2 n) in val
    for folder in hbs.HERLEV_NORMAL + hbs.HERLEV_ABNORMAL:
        n = len(list((shared_data / 'herlev' / folder).iterdir()))
        n_val = sum(p.split('/')[1] == folder for p in paths_va)
        assert n_val == int(np.floor(0.2 * n + 0.5)), folder
        assert meta['counts'][f'herlev/{folder}'] == dict(
            label=int(not folder.startswith('normal_')), train=n - n_val,
            val=n_val)
    assert meta['num_train'] == len(train) and meta['num_val'] == len(val)
    # the binary class ratio is kept (within one image per folder)
    frac_tr = np.mean([label for _, label in train])
    frac_va = np.mean([label for _, label in val])
    assert abs(frac_tr - frac_va) < 0.02


def test_seeded(shared_data):
    a = hbs.herlev_binary_split(shared_data, seed=3)
    b = hbs.herlev_binary_split(shared_data, seed=3)
    c = hbs.herlev_binary_split(shared_data, seed=4)
    assert a[1] == b[1] and a[0] == b[0]
    assert {p for p, _ in a[1]} != {p for p, _ in c[1]}


def test_extra_abnormal_and_bad_folder(shared_data):
    train, val, counts = hbs.herlev_binary_split(
        shared_data, extra_abnormal=['tct_crops_11class/hsil'])
    extra = [item for item in train + val
             if item[0].startswith('tct_crops_11class/hsil/')]
    n = len(list((shared_data / 'tct_crops_11class' / 'hsil').iterdir()))
    assert len(extra) == n and all(label == 1 for _, label in extra)
    assert counts['tct_crops_11class/hsil']['val'] == int(
        np.floor(0.2 * n + 0.5))
    with pytest.raises(hbs.HerlevSplitError, match='no_such_folder'):
        hbs.herlev_binary_split(shared_data, herlev_dir='no_such_folder')


def test_refuses_overwrite(split_dir, shared_data):
    before = (split_dir / 'val.txt').read_text()
    proc = run_tool([sys.executable, TOOL, '--data-root', shared_data,
                     '--out-dir', split_dir, '--seed', '4'], check=False)
    assert proc.returncode == 2
    assert '--force-overwrite' in proc.stderr
    assert (split_dir / 'val.txt').read_text() == before
    proc = run_tool([sys.executable, TOOL, '--data-root', shared_data,
                     '--out-dir', split_dir, '--seed', '4',
                     '--force-overwrite'])
    assert (split_dir / 'val.txt').read_text() != before
    # back to seed 3 for the other tests of the module
    run_tool([sys.executable, TOOL, '--data-root', shared_data,
              '--out-dir', split_dir, '--seed', '3', '--force-overwrite'])
    assert (split_dir / 'val.txt').read_text() == before


def test_missing_root_is_a_clear_error(tmp_path):
    proc = run_tool([sys.executable, TOOL, '--data-root', tmp_path / 'nope',
                     '--out-dir', tmp_path / 'out'], check=False)
    assert proc.returncode == 2
    assert 'folder not found' in proc.stderr and 'herlev' in proc.stderr
    assert not (tmp_path / 'out').exists()


def test_config_reads_the_lists(split_dir, shared_data):
    """The encoder config's dataset reads the lists at 64 px with the CPU
    ROI configs' cell encoder."""
    cfg = Config.fromfile(CONFIG)
    base = Config.fromfile(ROOT / 'configs' / 'roi_cls' / '_base_' /
                           'cervical_roi_512.py')
    enc = dict(base.cpu_cell_encoder)
    enc.pop('init_cfg')
    backbone = dict(cfg.model.backbone)
    assert backbone.pop('init_cfg') is None and backbone == enc
    for split in ('train', 'val'):
        ds_cfg = cfg[f'{split}_dataloader']['dataset'].copy()
        ds_cfg.update(ann_file=str(split_dir / f'{split}.txt'),
                      data_prefix=str(shared_data))
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            ds = DATASETS.build(ds_cfg)
            sample = ds[0]
        assert len(ds) == len((split_dir / f'{split}.txt').read_text()
                              .splitlines())
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        assert int(sample['data_samples'].gt_label) == _read(
            split_dir / f'{split}.txt')[0][1]
