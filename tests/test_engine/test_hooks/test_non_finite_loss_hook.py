"""NonFiniteLossHook stops at the first inf/NaN loss, naming the iteration
and the batch's images; finite losses pass."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmdet.structures import DetDataSample

from cervdet.engine.hooks import NonFiniteLossHook, non_finite_losses


def test_non_finite_entries():
    out = non_finite_losses(dict(loss=torch.tensor(float('inf')),
                                 loss_cls=torch.tensor(0.3),
                                 loss_bbox=torch.tensor(float('nan')),
                                 acc=98.0))
    assert set(out) == {'loss', 'loss_bbox'} and out['loss'] == math.inf
    assert non_finite_losses(dict(loss=torch.tensor(1.))) == {}
    assert non_finite_losses(None) == {}


def test_hook_names_iteration_and_images():
    hook = NonFiniteLossHook()
    runner = SimpleNamespace(iter=6, epoch=1)
    samples = []
    for name in ('a.png', 'b.png'):
        s = DetDataSample()
        s.set_metainfo(dict(img_path=f'/data/images/train/{name}'))
        samples.append(s)
    batch = dict(inputs=[], data_samples=samples)
    hook.after_train_iter(runner, 2, batch, dict(loss=torch.tensor(0.5)))
    with pytest.raises(FloatingPointError) as e:
        hook.after_train_iter(runner, 2, batch,
                              dict(loss=torch.tensor(float('inf')),
                                   loss_bbox=torch.tensor(float('inf'))))
    msg = str(e.value)
    assert 'iteration 7 (epoch 2, batch 3)' in msg
    assert 'loss_bbox=inf' in msg
    assert '/data/images/train/a.png, /data/images/train/b.png' in msg


def test_amp_overflow_tolerated_for_a_few_iterations():
    class AmpOptimWrapper:  # only the type name matters to the hook
        pass

    hook = NonFiniteLossHook(amp_patience=3)
    runner = SimpleNamespace(iter=0, epoch=0, optim_wrapper=AmpOptimWrapper())
    inf = dict(loss=torch.tensor(float('inf')))
    hook.after_train_iter(runner, 0, {}, inf)
    hook.after_train_iter(runner, 1, {}, inf)
    hook.after_train_iter(runner, 2, {}, dict(loss=torch.tensor(1.)))
    hook.after_train_iter(runner, 3, {}, inf)
    hook.after_train_iter(runner, 4, {}, inf)
    with pytest.raises(FloatingPointError):
        hook.after_train_iter(runner, 5, {}, inf)
