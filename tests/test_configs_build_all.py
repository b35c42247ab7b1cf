"""Every runnable config builds its model, in its own registry scope, with
no pretrained weights and nothing fetched from the network.

Pretrained ``init_cfg`` entries, ``pretrained`` and every ``*checkpoint*`` /
``*ckpt*`` key of the model are set to None before the build (a teacher or
PCN checkpoint is loaded later, by ``init_weights``, in a run). Configs that
resolve to the same model dict build it once.

Every name says what the config is (MMDetection's naming, CONTRIBUTING.md
"Configs"): the optimiser, epochs (``20e``) or iterations (``600it``,
``120k``) and batch (``1xb4``) in a name are those of the resolved config,
``r18-w32`` is the half-width ResNet-18 (base 32 channels) and ``r18`` the
full-width one, and no name says ``cpu`` instead of its schedule.
"""
import json
import re
import socket

import pytest
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

from conftest import ROOT

CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)


def _offline(obj):
    """A copy of a model dict without pretrained weights or checkpoints."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == 'init_cfg' and _is_pretrained(v):
                out[k] = None
            elif k == 'pretrained' or 'checkpoint' in k or 'ckpt' in k:
                out[k] = None
            else:
                out[k] = _offline(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_offline(v) for v in obj)
    return obj


def _is_pretrained(init_cfg) -> bool:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained'
               for c in cfgs)


def _resnet18_widths(obj) -> list:
    """``base_channels`` of every ResNet-18 dict inside a model dict."""
    found = []
    if isinstance(obj, dict):
        if obj.get('depth') == 18 and 'ResNet' in str(obj.get('type', '')):
            found.append(obj.get('base_channels', 64))
        for v in obj.values():
            found += _resnet18_widths(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            found += _resnet18_widths(v)
    return found


def _facts(cfg) -> dict:
    """What a config's name may claim, read from the resolved config."""
    train_cfg = cfg.get('train_cfg') or {}
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    return dict(
        optimizer=str(optimizer.get('type', '')).lower(),
        epochs=train_cfg.get('max_epochs'),
        iters=train_cfg.get('max_iters'),
        batch=(cfg.get('train_dataloader') or {}).get('batch_size'),
        r18_widths=_resnet18_widths(cfg.to_dict()['model']))


FACTS = {}


def _groups():
    """(scope, model dict) -> [scope, model dict, config paths]."""
    groups = {}
    for path in CONFIGS:
        cfg = Config.fromfile(str(path))
        FACTS[path] = _facts(cfg)
        model = _offline(cfg.to_dict()['model'])
        key = (cfg.default_scope, json.dumps(model, sort_keys=True,
                                             default=repr))
        groups.setdefault(key, [cfg.default_scope, model, []])[2].append(path)
    return list(groups.values())


GROUPS = _groups()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('a model build tried to use the network')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def test_every_runnable_config_is_in_a_group():
    assert sum(len(paths) for *_, paths in GROUPS) == len(CONFIGS) > 100


@pytest.mark.parametrize('group', GROUPS, ids=[g[2][0].name for g in GROUPS])
def test_config_model_builds(group, no_network):
    import torch
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    scope, model_cfg, paths = group
    registry = {'mmdet': DET_MODELS, 'mmpretrain': CLS_MODELS}[scope]
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(ConfigDict(model_cfg))
    assert isinstance(model, torch.nn.Module)
    assert sum(p.numel() for p in model.parameters()) > 0, paths


_SCHEDULE = re.compile(r'(?:^|[_-])(adamw|adam|sgd)(?:-[a-z]+)*-(\d+)(e|it|k)'
                       r'(?=[_-]|$)')
_BATCH = re.compile(r'(?:^|[_-])(\d+)xb(\d+)(?=[_-]|$)')


def _name_claims(stem: str) -> dict:
    """Optimiser, schedule, batch and ResNet-18 width a config name states."""
    claims = {}
    m = _SCHEDULE.search(stem)
    if m:
        claims['optimizer'] = m.group(1)
        n, unit = int(m.group(2)), m.group(3)
        claims['epochs' if unit == 'e' else 'iters'] = \
            n * 1000 if unit == 'k' else n
    m = _BATCH.search(stem)
    if m:
        claims['batch'] = int(m.group(2))
    if re.search(r'(?:^|_)r18-w32(?=[_-])', stem):
        claims['r18_width'] = 32
    elif re.search(r'(?:^|_)r18_', stem):
        claims['r18_width'] = 64
    return claims


def test_name_claims_parse():
    assert _name_claims('retinanet_r18-w32_fpn_ft-adam-2e_1xb4_cric-512') == \
        dict(optimizer='adam', epochs=2, batch=4, r18_width=32)
    assert _name_claims('x_r18_fpn_sgd-burnin-800it_1xb2_sup-25') == \
        dict(optimizer='sgd', iters=800, batch=2, r18_width=64)
    assert _name_claims('x_r101_fpn_sgd-120k_semi-25') == \
        dict(optimizer='sgd', iters=120000)
    assert _name_claims('yolox_s_8xb8-300e_cells') == dict(batch=8)


@pytest.mark.parametrize('path', CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_name_says_what_it_is(path):
    stem, facts = path.stem, FACTS[path]
    assert 'cpu' not in re.split(r'[_-]', stem), \
        f'{path.name}: name the schedule and batch (adam-20e_1xb4), not cpu'
    claims = _name_claims(stem)
    for key in ('optimizer', 'epochs', 'iters', 'batch'):
        if key in claims:
            assert claims[key] == facts[key], (path.name, key, facts)
    if 'r18_width' in claims and facts['r18_widths']:
        assert set(facts['r18_widths']) == {claims['r18_width']}, \
            (path.name, facts['r18_widths'])
