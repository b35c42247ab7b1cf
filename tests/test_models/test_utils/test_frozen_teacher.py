"""The frozen-teacher helper: build, strict load, freeze, eval under
``train()``, no gradient, the teacher out of checkpoints (and old
checkpoints that hold it still load)."""
import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_state_dict

from cervdet.models.utils import (
    FrozenTeacherMixin,
    build_teacher,
    load_teacher_checkpoint,
)

#: a small mmpretrain classifier, built from a model dict
CLS_CFG = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, num_stages=1, strides=(1, ),
                  dilations=(1, ), out_indices=(0, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64))


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.5))


class _Distiller(FrozenTeacherMixin, nn.Module):
    def __init__(self, teacher: nn.Module, **kw) -> None:
        super().__init__()
        self.student = _net()
        self.add_teacher('teacher', teacher, **kw)

    def forward(self, x):
        with torch.no_grad():
            t = self.teacher(x)
        return ((self.student(x) - t) ** 2).mean()


def _save(module: nn.Module, path) -> str:
    torch.save(dict(state_dict=module.state_dict(), meta=dict()), path)
    return str(path)


def test_build_from_config_loads_strictly_and_freezes(tmp_path):
    torch.manual_seed(0)
    trained = build_teacher(CLS_CFG, default_scope='mmpretrain')
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.)
    ckpt = _save(trained, tmp_path / 'teacher.pth')
    teacher = build_teacher(CLS_CFG, ckpt, default_scope='mmpretrain')
    assert type(teacher).__name__ == 'ImageClassifier'
    for (k, v), v2 in zip(trained.state_dict().items(),
                          teacher.state_dict().values()):
        assert torch.equal(v, v2), k
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert teacher.is_init  # init_weights leaves loaded weights alone
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher.init_weights()
    assert all(torch.equal(v, before[k])
               for k, v in teacher.state_dict().items())


def test_strict_load_errors(tmp_path):
    torch.manual_seed(0)
    teacher = build_teacher(CLS_CFG, default_scope='mmpretrain')
    assert not teacher.is_init  # nothing loaded: init_weights may run
    wrong = dict(CLS_CFG, head=dict(CLS_CFG['head'], num_classes=3))
    path = _save(build_teacher(wrong, default_scope='mmpretrain'),
                 tmp_path / 'wrong.pth')
    with pytest.raises(RuntimeError, match=r"(?s)does not fit model\.t .*"
                       r"size mismatch"):
        load_teacher_checkpoint(teacher, path, key='model.t_ckpt',
                                teacher_key='model.t')
    partial = {k: v for k, v in teacher.state_dict().items()
               if not k.startswith('head.')}
    torch.save(dict(state_dict=partial), tmp_path / 'partial.pth')
    with pytest.raises(RuntimeError, match='missing keys'):
        build_teacher(CLS_CFG, str(tmp_path / 'partial.pth'),
                      default_scope='mmpretrain')
    with pytest.raises(FileNotFoundError,
                       match=r"model\.teacher_ckpt='/no/such\.pth' not found"
                       r".*train it"):
        build_teacher(CLS_CFG, '/no/such.pth', default_scope='mmpretrain',
                      not_found_hint='train it')
    with pytest.raises(FileNotFoundError, match='fileDirname'):
        build_teacher('no/such/config.py')


def test_teacher_frozen_and_in_eval_after_train():
    model = _Distiller(_net())
    model.train()
    assert model.training and model.student.training
    assert not any(m.training for m in model.teacher.modules())
    model.eval()
    model.train(True)
    assert not any(m.training for m in model.teacher.modules())
    assert model.teacher_names == ['teacher']
    bn = model.teacher[1]
    mean = bn.running_mean.clone()
    loss = model(torch.rand(2, 3, 8, 8) * 5)
    loss.backward()
    assert torch.equal(bn.running_mean, mean)  # no BN statistics update
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_teacher_out_of_state_dict_and_old_checkpoints_load():
    model = _Distiller(_net())
    state = model.state_dict()
    assert state and not any(k.startswith('teacher.') for k in state)
    assert all(k.startswith('student.') for k in state)
    # a checkpoint without the teacher: no missing keys (torch and mmengine)
    other = _Distiller(_net())
    teacher_before = {k: v.clone() for k, v in other.teacher.state_dict()
                      .items()}
    assert not other.load_state_dict(state, strict=True).missing_keys
    load_state_dict(other, state, strict=True)
    assert all(torch.equal(v, teacher_before[k])
               for k, v in other.teacher.state_dict().items())
    # a checkpoint saved before the policy, teacher included: loads it
    old = dict(state)
    old.update({'teacher.' + k: torch.full_like(v, 3.) if
                v.is_floating_point() else v
                for k, v in model.teacher.state_dict().items()})
    result = other.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(other.teacher[0].weight,
                       torch.full_like(other.teacher[0].weight, 3.))
    # the student's keys are still checked
    with pytest.raises(RuntimeError, match='student'):
        other.load_state_dict({}, strict=True)


def test_momentum_teacher_policy():
    """A teacher trained with the model (DINO's momentum teacher) is saved,
    and only the modules ``keep_eval`` selects stay in eval mode."""
    model = _Distiller(_net(), saved=True,
                       keep_eval=lambda m: isinstance(m, nn.Dropout))
    assert any(k.startswith('teacher.') for k in model.state_dict())
    model.train()
    assert model.teacher[1].training and not model.teacher[3].training
    assert not any(p.requires_grad for p in model.teacher.parameters())
