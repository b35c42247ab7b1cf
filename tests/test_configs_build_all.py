"""Every runnable config builds its model, in its own registry scope, with
no pretrained weights and nothing fetched from the network.

Pretrained ``init_cfg`` entries, ``pretrained`` and every ``*checkpoint*`` /
``*ckpt*`` key of the model are set to None before the build (a teacher or
PCN checkpoint is loaded later, by ``init_weights``, in a run). Configs that
resolve to the same model dict build it once.
"""
import json
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


def _groups():
    """(scope, model dict) -> [scope, model dict, config paths]."""
    groups = {}
    for path in CONFIGS:
        cfg = Config.fromfile(str(path))
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
