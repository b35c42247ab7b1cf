"""The shipped CPU ROI-classifier config end to end on a tiny real ROI set:
feature cache -> tools/dist_train.sh on 2 gloo processes -> tools/test.py
with ROIClassificationMetric; the pixel (end-to-end) config trains a few
iterations; every configs/roi_cls config builds."""
import json
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.datasets import roi_sets as brs
from conftest import ROOT, free_port, run_tool

CFG_DIR = ROOT / 'configs' / 'roi_cls'
CPU_CFG = CFG_DIR / \
    'global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py'
E2E_CFG = CFG_DIR / \
    'global-local_r18-w32-e2e_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py'

EXPECTED = {
    'global-local': ('AttBLSTM', True, True, True),
    'att-blstm-vit': ('AttBLSTM', True, True, False),
    'att-blstm': ('AttBLSTM', False, False, False),
    'att-mil': ('GatedAttentionMIL', False, False, True),
    'lstm': ('RNNAggregator', False, False, False),
    'gru': ('RNNAggregator', False, False, False),
    'rnn': ('RNNAggregator', False, False, False),
}


@pytest.mark.parametrize('path', sorted(CFG_DIR.glob('*.py')),
                         ids=lambda p: p.stem)
def test_roi_configs_build(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpretrain'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    glob_type, local, cross, cell = EXPECTED[path.stem.split('_')[0]]
    assert type(model.global_branch).__name__ == glob_type
    assert (model.local_branch is not None) == local
    assert (model.cross_attention is not None) == cross
    assert (model.cell_head is not None) == cell
    if 'no-cell-loss' in path.stem:
        assert model.cell_head is None
    # the cache / pixel pipelines use the config's cell size and encoder
    assert cfg.cell_size in (64, 224) and cfg.cell_encoder.type == 'ResNet'
    if 'gru' in path.stem:
        assert model.global_branch.rnn.__class__.__name__ == 'GRU'
    if path.stem.startswith('rnn'):
        assert model.global_branch.rnn.__class__.__name__ == 'RNN'
    if type(model.global_branch).__name__ == 'AttBLSTM':
        assert model.global_branch.peephole  # Eq. 1
    if '_r18-w32' in path.stem:  # the CPU size (adamw-20e_1xb4)
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
        assert 'momentum' not in cfg.optim_wrapper.optimizer
    else:  # the paper's optimiser
        assert cfg.optim_wrapper.optimizer.type == 'SGD'
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(3e-4)
        assert cfg.train_cfg.max_epochs == 90


@pytest.fixture(scope='module')
def roi_set(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('roi_train')
    root = tmp / 'rois'
    brs.build_roi_set(root, shared_data / 'cric_crops_bethesda',
                      roi_size=256, cells_per_roi=(4, 10), num_train=6,
                      num_val=3, num_test=3, crop_scale=(0.4, 0.6),
                      background='paper', progress=False)
    return tmp, root


def _config(tmp, root, base, name, extra=''):
    cfg = tmp / name
    cfg.write_text(f"""
_base_ = [{str(base)!r}]
data_root = {str(root) + '/'!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=2, val_interval=2)
# a random cell CNN instead of the DINO backbone of the CPU configs
cell_encoder = dict(init_cfg=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
{extra}
""")
    return cfg


def _records(work):
    return [json.loads(line) for f in sorted(work.rglob('*.json'))
            if f.name != 'scalars.json'
            for line in f.read_text().splitlines() if line.strip()]


def test_cached_config_dist_train_then_test(roi_set, capsys):
    tmp, root = roi_set
    cfg = _config(tmp, root, CPU_CFG, 'roi_cached.py')
    assert run_tool([sys.executable, ROOT / 'tools' / 'roi_cls' /
                     'extract_cell_features.py', cfg, '--split', 'all',
                     '--no-progress']).returncode == 0
    cache = root / 'features' / 'r18-w32-dino_64'
    assert len(list(cache.glob('*.npz'))) == 12
    assert (cache / 'cell_encoder.pth').is_file()
    work = tmp / 'work_cached'
    run_tool(['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2,
              '--work-dir', work], env=dict(PORT=str(free_port())),
             timeout=600)
    records = _records(work)
    train = [r for r in records if 'loss_roi' in r]
    assert train and all('loss_cell' in r for r in train)
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in train)
    assert any('roi/accuracy' in r for r in records)
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    test_work = tmp / 'test_cached'
    proc = run_tool([sys.executable, 'tools/test.py', cfg, ckpt,
                     '--work-dir', test_work], timeout=600)
    out = proc.stdout + proc.stderr
    for key in ('roi/accuracy', 'roi/f1_HSIL', 'roi/roc_auc_NILM',
                'roi/macro_f1', 'roi/cell_accuracy'):
        assert key in out, key
    res = [r for r in _records(test_work) if 'roi/accuracy' in r]
    assert res and 0. <= res[-1]['roi/accuracy'] <= 100.


def test_pixel_config_trains_end_to_end(roi_set):
    tmp, root = roi_set
    cfg = _config(tmp, root, E2E_CFG, 'roi_e2e.py',
                  extra='train_cfg = dict(max_epochs=1, val_interval=1)\n'
                  'model = dict(cell_encoder=dict(init_cfg=None))\n'
                  'default_hooks = dict(checkpoint=dict(interval=1))')
    work = tmp / 'work_e2e'
    run_tool([sys.executable, 'tools/train.py', cfg, '--work-dir', work],
             timeout=600)
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu',
                      weights_only=True)
    keys = ckpt['state_dict'].keys()
    # the encoder is part of the model and was trained (not frozen)
    assert any(k.startswith('cell_encoder.') for k in keys)
    train = [r for r in _records(work) if 'loss_roi' in r]
    assert train
