"""The DINO configs of configs/ssl/: every config builds with the official
recipe's settings; the crop pipelines run on a real crop; the weight-decay
schedule moves; a few real pre-training iterations with tools/train.py (and
tools/dist_train.sh on 2 gloo processes) on real Pap-smear crops give finite
losses, k-NN validation and checkpoints that reload, with the last layer
frozen during the first epoch (the 2-process ViT run is in
tests/test_models/test_selfsup/test_dino_pretrain_dist.py)."""
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from conftest import ROOT, run_tool

SSL = ROOT / 'configs' / 'ssl'
CONFIGS = sorted(p.name for p in SSL.glob('*.py'))
CPU_R18 = SSL / 'dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py'
CPU_VIT = SSL / 'dino_vit-tiny-p16_adamw-30e_1xb32_cervical-tiles.py'


def _build(model_cfg):
    from mmpretrain.registry import MODELS
    model_cfg = Config(dict(model=model_cfg)).model
    model_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def test_expected_configs_exist():
    assert {'dino_resnet50_sgd-300e_cervical-tiles.py',
            'dino_vit-small-p16_adamw-300e_cervical-tiles.py',
            'dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py',
            'dino_vit-tiny-p16_adamw-30e_1xb32_cervical-tiles.py'} <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_with_dino_settings(name):
    cfg = Config.fromfile(SSL / name)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports.imports == ['cervdet']
    model = _build(cfg.model)
    assert type(model).__name__ == 'DINOPretrain'
    assert model.base_momentum == 0.996 and model.final_momentum == 1.0
    assert model.loss_module.student_temp == 0.1
    assert model.loss_module.center_momentum == 0.9
    assert model.loss_module.warmup_teacher_temp == 0.04
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # two global views, local crops off by default
    multiview = cfg.train_dataloader.dataset.pipeline[1]
    assert multiview.type == 'MultiView' and multiview.num_views == [1, 1]
    assert cfg.train_dataloader.dataset.with_label is False
    assert cfg.train_dataloader.collate_fn.type == 'default_collate'
    assert cfg.val_evaluator.type == 'KNNMetric'
    assert tuple(cfg.val_evaluator.topk) == (10, 20)
    assert cfg.val_dataloader.dataset.data_root == '../shared/data/herlev/'
    assert any(h.type == 'DINOFreezeLastLayerHook' and h.freeze_epochs == 1
               for h in cfg.custom_hooks)
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == ('AdamW' if 'vit' in name else 'SGD')
    assert cfg.optim_wrapper.clip_grad.max_norm == 3.0
    if 'vit' in name:
        wd = [s for s in cfg.param_scheduler if s.get('param_name') ==
              'weight_decay']
        assert opt.weight_decay == 0.04 and wd[0].eta_min_ratio == 10.
    else:
        assert opt.weight_decay == 1e-4 and opt.momentum == 0.9
    if '300e' in name:  # the paper's runs (Stegmueller et al. Sec. 3.1)
        assert model.head.out_channels == 65536
        total = 192 if 'vit' in name else 256
        assert cfg.train_dataloader.batch_size * cfg.num_gpus == total
        assert cfg.auto_scale_lr.base_batch_size == total
        assert cfg.train_cfg.max_epochs == cfg.max_epochs == 300
        assert max(s.end for s in cfg.param_scheduler) == 300
        # DINO's lr is given per 256 images and scaled linearly
        assert opt.lr == pytest.approx(
            (5e-4 if 'vit' in name else 0.03) * total / 256)
        assert model.head.norm_last_layer is ('vit' not in name)
        assert model.loss_module.teacher_temp == (0.07 if 'vit' in name
                                                  else 0.04)


def test_official_crop_scales_and_local_pipeline(shared_data):
    from mmengine.dataset import Compose
    from mmpretrain.registry import TRANSFORMS
    cfg = Config.fromfile(SSL / '_base_' / 'cervical_tiles_dino.py')

    def scales(pipeline):
        return [view[0].crop_ratio_range for view in pipeline[1].transforms]

    assert scales(cfg.train_pipeline_resnet_224) == [(0.14, 1.)] * 2
    assert scales(cfg.train_pipeline_resnet_224_local8) == [
        (0.14, 1.), (0.14, 1.), (0.05, 0.14)]
    assert scales(cfg.train_pipeline_vit_224_local8) == [
        (0.4, 1.), (0.4, 1.), (0.05, 0.4)]
    # DINO's two global transforms: blur 1.0 / blur 0.1 + solarise 0.2
    g1, g2 = cfg.train_pipeline_vit_224[1].transforms
    blur_solarize = [(v[-2].type, v[-2].prob, v[-1].type, v[-1].prob)
                     for v in (g1, g2)]
    assert blur_solarize == [('GaussianBlur', 1., 'Solarize', 0.),
                             ('GaussianBlur', .1, 'Solarize', .2)]
    img = sorted((shared_data / 'cric_crops_bethesda' / 'NILM').glob(
        '*.png'))[0]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose([TRANSFORMS.build(t) for t in
                            cfg.train_pipeline_vit_224_local8])
    for _ in range(3):  # random colour jitter incl. negative hue shifts
        out = pipeline(dict(img_path=str(img)))
        shapes = [tuple(v.shape) for v in out['inputs']]
        assert shapes == [(3, 224, 224)] * 2 + [(3, 96, 96)] * 8
        assert all(v.dtype == torch.uint8 for v in out['inputs'])


def test_weight_decay_schedule_moves():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(CPU_VIT)
    model = _build(cfg.model)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
    sched_cfg = [s for s in cfg.param_scheduler
                 if s.get('param_name') == 'weight_decay'][0].copy()
    sched_cfg.update(by_epoch=False, T_max=10, begin=0, end=10)
    sched_cfg.pop('convert_to_iter_based')
    sched = PARAM_SCHEDULERS.build(sched_cfg, default_args=dict(optimizer=ow))
    groups = ow.optimizer.param_groups
    decayed = [g for g in groups if g['weight_decay'] > 0]
    flat = [g for g in groups if g['weight_decay'] == 0]
    assert decayed and flat  # biases / norms are not decayed
    assert {g['weight_decay'] for g in decayed} == {0.04}
    values = []
    for _ in range(10):
        sched.step()
        values.append(decayed[0]['weight_decay'])
    assert values[4] == pytest.approx(0.04 + 0.36 * (1 - math.cos(
        math.pi * 5 / 10)) / 2)
    # the last scheduled step is T_max - 1 (as DINO's cosine_scheduler)
    assert values[-1] == pytest.approx(0.04 + 0.36 * (1 - math.cos(
        math.pi * 9 / 10)) / 2)
    assert values[-1] > 0.39
    assert values == sorted(values)
    assert all(g['weight_decay'] == 0 for g in flat)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory, shared_data):
    """16 real Pap-smear crops as unlabeled tiles and 2 x 8 labeled Herlev
    cells for k-NN, as symlinks (nothing copied)."""
    root = tmp_path_factory.mktemp('dino_data')
    tiles = root / 'tiles'
    tiles.mkdir()
    crops = sorted((shared_data / 'cric_crops_bethesda' / 'NILM').glob(
        '*.png'))[:12] + sorted(
            (shared_data / 'cric_crops_bethesda' / 'HSIL').glob('*.png'))[:4]
    for i, src in enumerate(crops):
        (tiles / f'tile_{i:02d}.png').symlink_to(src)
    for cls in ('normal_intermediate', 'severe_dysplastic'):
        (root / 'knn' / cls).mkdir(parents=True)
        for src in sorted((shared_data / 'herlev' / cls).glob('*.jpg'))[:8]:
            (root / 'knn' / cls / src.name).symlink_to(src)
    return root


def _tiny_config(path: Path, base: Path, data: Path, vit: bool) -> Path:
    if vit:
        model = """model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2,
                            num_heads=2, feedforward_channels=64),
                  img_size=32, patch_size=8, drop_path_rate=0.),
    head=dict(in_channels=32, hidden_channels=32, bottleneck_channels=16,
              out_channels=64),
    loss=dict(out_channels=64))"""
    else:
        model = """model = dict(
    backbone=dict(stem_channels=8, base_channels=8),
    head=dict(in_channels=64, hidden_channels=32, bottleneck_channels=16,
              out_channels=64),
    loss=dict(out_channels=64))"""
    path.write_text(f"""
_base_ = [{str(base)!r}]
{model}
_crop = dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.14, 1.))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={str(data / 'tiles') + '/'!r}, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=[1, 1, 2], transforms=[
            [_crop, dict(type='RandomFlip', prob=0.5)],
            [_crop, dict(type='Solarize', thr=128, prob=0.2)],
            [dict(type='RandomResizedCrop', scale=16,
                  crop_ratio_range=(0.05, 0.14))]]),
        dict(type='PackInputs')]))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={str(data / 'knn') + '/'!r}, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
        dict(type='PackInputs')]))
test_dataloader = val_dataloader
val_evaluator = dict(type='KNNMetric', topk=(3, ), num_splits=2)
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                        begin=0, end=2)]
optim_wrapper = dict(optimizer=dict(lr=0.05))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
randomness = dict(seed=0)
""")
    return path


def _scalars(work: Path):
    logs = sorted(work.glob('*/vis_data/scalars.json'))
    assert logs, f'no scalars.json under {work}'
    return [json.loads(line) for line in logs[-1].read_text().splitlines()]


def test_train_tool_few_iterations(tmp_path, tiny_data):
    cfg_path = _tiny_config(tmp_path / 'cfg.py', CPU_R18, tiny_data, False)
    work = tmp_path / 'work'
    run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg_path,
              '--work-dir', work],
             timeout=600)
    records = _scalars(work)
    train = [r for r in records if 'loss_dino' in r]
    assert len(train) == 8  # 2 epochs x 4 iterations
    for r in train:
        for key in ('loss_dino', 'teacher_entropy', 'center_norm',
                    'teacher_temp', 'momentum'):
            assert math.isfinite(r[key]), (key, r)
        assert 0 <= r['teacher_entropy'] <= math.log(64) + 1e-4
    assert train[0]['momentum'] == pytest.approx(0.996)
    assert train[-1]['momentum'] > train[0]['momentum']
    knn = [r for r in records if 'knn/weighted_f1_k3' in r]
    assert knn and 0 <= knn[-1]['knn/weighted_f1_k3'] <= 100

    cfg = Config.fromfile(cfg_path)
    ck1 = torch.load(work / 'epoch_1.pth', map_location='cpu')['state_dict']
    ck2 = torch.load(work / 'epoch_2.pth', map_location='cpu')['state_dict']
    # epoch 1 frozen: the student's last layer never moved, so its EMA
    # teacher equals it; the backbone trained
    key = 'head.last_layer.weight_v'
    torch.testing.assert_close(ck1['teacher.' + key], ck1[key], rtol=0,
                               atol=1e-6)
    assert not torch.allclose(ck1['teacher.head.mlp.0.weight'],
                              ck1['head.mlp.0.weight'])
    # epoch 2: it trains
    assert not torch.equal(ck1[key], ck2[key])
    assert ck2['loss_module.center'].abs().sum() > 0
    # the checkpoint reloads strictly into a freshly built model
    model = _build(cfg.model)
    load_checkpoint(model, str(work / 'epoch_2.pth'), map_location='cpu',
                    strict=True)
    torch.testing.assert_close(model.teacher['head'].last_layer.weight_v,
                               ck2['teacher.' + key])
    torch.testing.assert_close(model.loss_module.center,
                               ck2['loss_module.center'])
