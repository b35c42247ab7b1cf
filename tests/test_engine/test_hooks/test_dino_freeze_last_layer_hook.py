"""DINOFreezeLastLayerHook: the head's last layer is unchanged during the
frozen epoch (gradient, weight decay and momentum skipped) while the rest of
the student trains, and it trains after."""
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS, MODELS

from cervdet.engine.hooks import DINOFreezeLastLayerHook, last_layer_frozen


def test_last_layer_frozen_values():
    assert last_layer_frozen(0, 0, freeze_epochs=1)
    assert last_layer_frozen(0, 999, freeze_epochs=1)
    assert not last_layer_frozen(1, 1000, freeze_epochs=1)
    assert not last_layer_frozen(0, 0, freeze_epochs=0)
    assert last_layer_frozen(5, 9, freeze_iters=10)
    assert not last_layer_frozen(0, 10, freeze_iters=10)


def _model():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='DINOPretrain',
            backbone=dict(type='ResNet', depth=18, stem_channels=8,
                          base_channels=8, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='DINOProjectionHead', in_channels=64,
                      out_channels=32, hidden_channels=16,
                      bottleneck_channels=8),
            loss=dict(type='DINOLoss', out_channels=32)))
    model.init_weights()
    return model


def _data():
    g = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (2, 3, 32, 32), generator=g,
                                      dtype=torch.uint8) for _ in range(2)],
                data_samples=None)


def test_frozen_first_epoch_then_trains():
    MessageHub.get_instance(f'test_freeze_{uuid.uuid4().hex}').update_info(
        'max_iters', 10)
    model = _model()
    model.train()
    # weight decay and momentum would move a zero-gradient parameter
    ow = build_optim_wrapper(model, dict(optimizer=dict(
        type='SGD', lr=0.5, momentum=0.9, weight_decay=0.1)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hook = HOOKS.build(dict(type='DINOFreezeLastLayerHook',
                                freeze_epochs=1))
    runner = SimpleNamespace(model=model, optim_wrapper=ow,
                             train_loop=object(), epoch=0, iter=0)
    hook.before_train(runner)
    assert [id(p) for p in hook._params] == [
        id(model.head.last_layer.weight_v)]
    v0 = model.head.last_layer.weight_v.detach().clone()
    conv0 = model.backbone.conv1.weight.detach().clone()
    for it in range(2):  # epoch 0: frozen
        runner.iter = it
        hook.before_train_iter(runner, it)
        model.train_step(_data(), ow)
    assert torch.equal(model.head.last_layer.weight_v, v0)
    assert not torch.equal(model.backbone.conv1.weight, conv0)
    runner.epoch, runner.iter = 1, 2  # epoch 1: trains
    hook.before_train_iter(runner, 0)
    model.train_step(_data(), ow)
    assert not torch.equal(model.head.last_layer.weight_v, v0)
    hook.after_train(runner)
    assert hook._handles == []


def test_checks():
    model = _model()
    ow = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.1)))
    iter_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    runner = SimpleNamespace(model=model, optim_wrapper=ow,
                             train_loop=iter_loop, epoch=0, iter=0)
    with pytest.raises(ValueError, match='freeze_iters'):
        DINOFreezeLastLayerHook(freeze_epochs=1).before_train(runner)
    DINOFreezeLastLayerHook(freeze_iters=5).before_train(runner)
    runner.train_loop = object()
    with pytest.raises(ValueError, match='no trainable'):
        DINOFreezeLastLayerHook(param_key='nothing_like_this').before_train(
            runner)
