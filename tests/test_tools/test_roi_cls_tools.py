"""Tests of tools/roi_cls/extract_cell_features.py (its logic:
cervdet.datasets.cell_feature_cache) on a tiny real ROI set."""
import json
import sys

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS

from cervdet.datasets import cell_feature_cache as efx
from cervdet.datasets import roi_sets as brs
from cervdet.datasets.transforms import crop_and_resize
from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'roi_cls' / 'extract_cell_features.py'
ENCODER = dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, ))
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]

CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['cervdet'], allow_failed_imports=False)
cell_size = 32
cell_encoder = {encoder!r}
model = dict(data_preprocessor=dict(mean={mean!r}, std={std!r}, to_rgb=True))
data_root = {root!r}
def _ds(split):
    return dict(type='ROIBagDataset', data_root=data_root,
                ann_file=f'annotations/{{split}}.json',
                data_prefix=dict(img_path=f'images/{{split}}/'),
                feature_cache='features/tiny',
                pipeline=[dict(type='LoadCellFeatures'),
                          dict(type='PackROIBagInputs')])
train_dataloader = dict(batch_size=2, dataset=_ds('train'))
val_dataloader = dict(batch_size=2, dataset=_ds('val'))
test_dataloader = dict(batch_size=2, dataset=_ds('test'))
'''


@pytest.fixture(scope='module')
def tiny(shared_data, tmp_path_factory):
    """A 3+3+3 ROI set of 192 px ROIs, its config and an encoder checkpoint."""
    tmp = tmp_path_factory.mktemp('roi_tool')
    root = tmp / 'rois'
    brs.build_roi_set(root, shared_data / 'cric_crops_bethesda',
                      roi_size=192, cells_per_roi=(3, 6), num_train=3,
                      num_val=3, num_test=3, crop_scale=(0.4, 0.6),
                      background='paper', progress=False)
    cfg = tmp / 'tiny_roi_cfg.py'
    cfg.write_text(CONFIG.format(encoder=ENCODER, mean=MEAN, std=STD,
                                 root=str(root)))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        encoder = MODELS.build(ENCODER)
    state = {f'backbone.{k}': v for k, v in encoder.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(3, 64)
    ckpt = tmp / 'cls.pth'
    torch.save(dict(state_dict=state), ckpt)
    encoder.eval()  # (returns None for mmpretrain's ResNet)
    return dict(root=root, cfg=cfg, ckpt=ckpt, encoder=encoder)


def _dataset(root, split, pipeline):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return DATASETS.build(dict(
            type='ROIBagDataset', data_root=str(root),
            ann_file=f'annotations/{split}.json',
            data_prefix=dict(img_path=f'images/{split}/'),
            feature_cache='features/tiny', pipeline=pipeline))


def _run(tiny, *extra, check=True):
    return run_tool([sys.executable, TOOL, tiny['cfg'], '--split', 'all',
                     '--checkpoint', tiny['ckpt'], '--checkpoint-prefix',
                     'backbone.', '--batch-size', '5', '--no-progress',
                     *extra], timeout=300, check=check)


def test_extract_resume_stale_and_round_trip(tiny):
    import cv2
    root = tiny['root']
    proc = _run(tiny)
    assert '9 ROIs, 0 cached and up to date, 9 to extract' in proc.stdout
    assert 'cells/s' in proc.stdout
    files = sorted((root / 'features' / 'tiny').glob('*.npz'))
    assert len(files) == 9

    # the cache holds what the encoder gives on the crops (fp16)
    ds = _dataset(root, 'val', [])
    info = ds.get_data_info(0)
    with np.load(info['cache_path']) as data:
        assert data['pooled'].dtype == np.float16
        assert data['pooled'].shape == (info['num_cells'], 64)
        assert data['maps'].shape == (info['num_cells'], 64, 1, 1)
        np.testing.assert_array_equal(data['boxes'], info['cell_bboxes'])
        pooled = data['pooled'].astype(np.float32)
    crops = crop_and_resize(cv2.imread(info['img_path']), info['cell_bboxes'],
                            32)
    x = torch.from_numpy(crops).flip(1).float()  # BGR -> RGB
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(
        1, 3, 1, 1)
    with torch.no_grad():
        ref = tiny['encoder'](x)[-1].mean((2, 3)).numpy()
    np.testing.assert_allclose(pooled, ref, rtol=1e-2, atol=1e-2)

    # second run: all cached
    args = [sys.executable, TOOL, str(tiny['cfg']), '--split', 'all',
            '--checkpoint', str(tiny['ckpt']), '--checkpoint-prefix',
            'backbone.', '--no-progress']
    proc = run_tool(args, check=False)
    assert proc.returncode == 0
    assert '9 cached and up to date, 0 to extract' in proc.stdout

    # cached-mode pipeline gives the interface's inputs
    ds = _dataset(root, 'val', [dict(type='LoadCellFeatures'),
                                dict(type='PackROIBagInputs')])
    item = ds[0]
    assert item['inputs']['pooled'].shape == (info['num_cells'], 64)
    assert item['inputs']['maps'].dtype == torch.float32
    assert item['data_samples'].num_cells == info['num_cells']

    # a moved box makes that cache stale: loading and re-extraction refuse
    ann_file = root / 'annotations' / 'val.json'
    ann = json.loads(ann_file.read_text())
    first = next(a for a in ann['annotations'] if a['image_id'] == 1)
    first['bbox'][0] = max(0, first['bbox'][0] - 2)
    first['bbox'][2] += 1
    ann_file.write_text(json.dumps(ann))
    ds = _dataset(root, 'val', [dict(type='LoadCellFeatures'),
                                dict(type='PackROIBagInputs')])
    with pytest.raises(ValueError, match='stale.*extract_cell_features'):
        ds.pipeline(ds.get_data_info(0))
    proc = run_tool(args, check=False)
    assert proc.returncode == 2
    assert '1 existing caches are stale' in proc.stderr
    proc = run_tool(args + ['--force-overwrite'], check=False)
    assert proc.returncode == 0
    assert '8 cached and up to date, 1 to extract' in proc.stdout
    assert ds[0]['inputs']['pooled'].shape[0] == info['num_cells']


def test_pixel_mode_pipeline(tiny):
    ds = _dataset(tiny['root'], 'train', [
        dict(type='LoadImageFromFile'), dict(type='CropCells', size=32),
        dict(type='PackROIBagInputs')])
    item = ds[1]
    n = ds.get_data_info(1)['num_cells']
    assert item['inputs'].shape == (n, 3, 32, 32)
    assert item['inputs'].dtype == torch.uint8
    assert item['data_samples'].cell_labels.shape == (n, )
    assert int(item['data_samples'].gt_label) in (0, 1, 2)


def test_build_encoder_prefix_and_download_guard(tiny):
    from mmengine.config import Config
    cfg = Config(dict(cell_encoder=ENCODER))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        enc = efx.build_encoder(cfg, str(tiny['ckpt']), 'backbone.', 'cpu')
        for k, v in tiny['encoder'].state_dict().items():
            torch.testing.assert_close(enc.state_dict()[k], v)
        assert not enc.training
        with pytest.raises(ValueError, match="no key starts with "
                           "--checkpoint-prefix 'model.'"):
            efx.build_encoder(cfg, str(tiny['ckpt']), 'model.', 'cpu')
        url = Config(dict(cell_encoder=dict(ENCODER, init_cfg=dict(
            type='Pretrained', checkpoint='https://x/r50.pth'))))
        with pytest.raises(ValueError, match='nothing is downloaded'):
            efx.build_encoder(url, None, '', 'cpu')
    mean, std, to_rgb = efx.normalisation(Config(dict()))
    assert mean.tolist() == pytest.approx(MEAN) and to_rgb
    mean, std, to_rgb = efx.normalisation(Config(dict(model=dict(
        data_preprocessor=dict(mean=[1, 2, 3], std=[4, 5, 6])))))
    assert mean.tolist() == [1, 2, 3] and std.tolist() == [4, 5, 6]
    assert not to_rgb  # ROIBagDataPreprocessor's default
