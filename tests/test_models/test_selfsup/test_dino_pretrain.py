"""DINOPretrain: the cosine momentum schedule, the EMA teacher (changes after
a step with exactly m(0), receives no gradient, sees only global views), the
predict-mode features for k-NN, and input checks."""
import math
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from cervdet.models.selfsup import (
    cosine_momentum,
    ema_update_,
    group_views_by_shape,
)
from cervdet.models.selfsup.dino_pretrain import is_dropout


def tiny_cfg(**kwargs):
    cfg = dict(
        type='DINOPretrain',
        backbone=dict(type='ResNet', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='DINOProjectionHead', in_channels=64, out_channels=32,
                  hidden_channels=16, bottleneck_channels=8),
        loss=dict(type='DINOLoss', out_channels=32))
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(tiny_cfg(**kwargs))
    model.init_weights()
    return model


def views(batch=2, sizes=(32, 32)):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (batch, 3, s, s), generator=g,
                          dtype=torch.uint8) for s in sizes]


@pytest.fixture
def hub():
    # a newly created instance is the current one (read by the model)
    hub = MessageHub.get_instance(f'test_dino_pretrain_{uuid.uuid4().hex}')
    hub.update_info('max_iters', 100)
    hub.update_info('max_epochs', 10)
    hub.update_info('iter', 0)
    return hub


def test_cosine_momentum_values():
    assert cosine_momentum(0, 100) == pytest.approx(0.996)
    assert cosine_momentum(50, 100) == pytest.approx(0.998)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(25, 100) == pytest.approx(
        1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    assert cosine_momentum(500, 100) == pytest.approx(1.0)  # clipped
    values = [cosine_momentum(i, 10) for i in range(11)]
    assert values == sorted(values)
    with pytest.raises(ValueError, match='max_steps'):
        cosine_momentum(0, 0)


def test_ema_update_convention():
    t = [torch.tensor([1., 1.])]
    ema_update_(t, [torch.tensor([3., 3.])], momentum=0.9)
    # m is the weight of the OLD teacher: 0.9 * 1 + 0.1 * 3
    torch.testing.assert_close(t[0], torch.tensor([1.2, 1.2]))


def test_helpers():
    vs = [torch.zeros(1, 3, 8, 8)] * 2 + [torch.zeros(1, 3, 4, 4)] * 3
    assert group_views_by_shape(vs) == [[0, 1], [2, 3, 4]]


def test_teacher_starts_equal_and_has_no_grad():
    model = build()
    for (n, s), (_, t) in zip(model.backbone.named_parameters(),
                              model.teacher['backbone'].named_parameters()):
        assert torch.equal(s, t), n
        assert not t.requires_grad
    assert set(model.teacher.keys()) == {'backbone', 'neck', 'head'}


def test_teacher_updated_every_iteration_with_m(hub):
    model = build()
    model.train()
    ow = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.5, momentum=0.9)))
    data = dict(inputs=views(sizes=(32, 32, 16, 16)), data_samples=None)
    student0 = model.backbone.conv1.weight.detach().clone()
    teacher0 = model.teacher['backbone'].conv1.weight.detach().clone()
    hub.update_info('iter', 0)
    log0 = model.train_step(data, ow)
    # step 0: the student moved, the teacher did not (no step happened yet)
    assert not torch.equal(model.backbone.conv1.weight, student0)
    torch.testing.assert_close(model.teacher['backbone'].conv1.weight,
                               teacher0)
    assert float(log0['momentum']) == pytest.approx(0.996)
    for key in ('loss', 'loss_dino', 'teacher_entropy', 'center_norm',
                'teacher_temp', 'momentum'):
        assert torch.isfinite(log0[key]), key
    # the parsed total loss only sums 'loss*' keys
    assert float(log0['loss']) == pytest.approx(float(log0['loss_dino']))

    student1 = model.backbone.conv1.weight.detach().clone()
    hub.update_info('iter', 1)
    model.train_step(data, ow)
    expected = 0.996 * teacher0 + 0.004 * student1  # m(0) = 0.996
    torch.testing.assert_close(model.teacher['backbone'].conv1.weight,
                               expected)
    # a second loss call at the same iteration does not update again
    teacher1 = model.teacher['backbone'].conv1.weight.detach().clone()
    model.loss(model.data_preprocessor(data, True)['inputs'], None)
    torch.testing.assert_close(model.teacher['backbone'].conv1.weight,
                               teacher1)
    # iteration 51 uses m(50) = 0.998
    hub.update_info('iter', 51)
    log = model.train_step(data, ow)
    assert float(log['momentum']) == pytest.approx(0.998)


def test_gradient_to_student_only(hub):
    model = build()
    model.train()
    data = model.data_preprocessor(
        dict(inputs=views(sizes=(32, 32, 16)), data_samples=None), True)
    model.loss(data['inputs'], None)['loss_dino'].backward()
    for p in model.teacher.parameters():
        assert p.grad is None and not p.requires_grad
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert model.head.last_layer.weight_v.grad.abs().sum() > 0


def test_teacher_sees_global_views_only(hub):
    model = build()
    model.train()
    seen = {'teacher': [], 'student': []}
    model.teacher['backbone'].register_forward_hook(
        lambda m, i, o: seen['teacher'].append(tuple(i[0].shape)))
    model.backbone.register_forward_hook(
        lambda m, i, o: seen['student'].append(tuple(i[0].shape)))
    data = model.data_preprocessor(
        dict(inputs=views(batch=3, sizes=(32, 32, 16, 16, 16)),
             data_samples=None), True)
    losses = model.loss(data['inputs'], None)
    assert seen['teacher'] == [(6, 3, 32, 32)]
    assert seen['student'] == [(6, 3, 32, 32), (9, 3, 16, 16)]
    assert losses['loss_dino'].requires_grad


def test_teacher_never_drops(hub):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(tiny_cfg(
            backbone=dict(type='VisionTransformer',
                          arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                                    feedforward_channels=32),
                          img_size=32, patch_size=8, drop_path_rate=0.5,
                          drop_rate=0.5, out_type='cls_token'),
            neck=None,
            head=dict(type='DINOProjectionHead', in_channels=16,
                      out_channels=32, hidden_channels=16,
                      bottleneck_channels=8)))
    model.init_weights()
    model.train()
    drops = [m for m in model.teacher.modules() if is_dropout(m)]
    assert drops and not any(m.training for m in drops)
    assert model.teacher['backbone'].training  # BN/LN follow train mode
    assert any(m.training for m in model.backbone.modules() if is_dropout(m))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        t1 = model.teacher['backbone'](x)[-1]
        t2 = model.teacher['backbone'](x)[-1]
        s1 = model.backbone(x)[-1]
        s2 = model.backbone(x)[-1]
    torch.testing.assert_close(t1, t2)
    assert not torch.allclose(s1, s2)
    # the ViT cls token goes straight to the head (no neck)
    data = model.data_preprocessor(
        dict(inputs=views(sizes=(32, 32)), data_samples=None), True)
    assert torch.isfinite(model.loss(data['inputs'], None)['loss_dino'])


def test_predict_features_for_knn():
    model = build()
    model.eval()
    imgs = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    samples = [DataSample().set_gt_label(i % 2) for i in range(3)]
    out = model.val_step(dict(inputs=imgs, data_samples=samples))
    assert len(out) == 3
    assert out[0].feat.shape == (64, )
    assert int(out[1].gt_label) == 1
    x = model.data_preprocessor(dict(inputs=imgs, data_samples=None),
                                False)['inputs']
    with torch.no_grad():
        ref = model.teacher['backbone'](x)[-1].mean(dim=(2, 3))
    torch.testing.assert_close(torch.stack([s.feat for s in out]), ref)
    # no data samples: new ones are made
    assert model.val_step(dict(inputs=imgs, data_samples=None))[0].feat.shape \
        == (64, )
    # predict_on='student' reads the student backbone
    with torch.no_grad():
        model.backbone.conv1.weight.add_(1.)
    feats_s = model.extract_feat(x, on='student')
    assert not torch.allclose(feats_s, ref)


def test_input_checks(hub):
    model = build()
    model.train()
    with pytest.raises(TypeError, match='list of views'):
        model.loss(torch.zeros(2, 3, 32, 32), None)
    with pytest.raises(ValueError, match='views'):
        model.loss([torch.zeros(2, 3, 32, 32)], None)
    with pytest.raises(ValueError, match='predict_on'):
        build(predict_on='both')
    with pytest.raises(ValueError, match='base_momentum'):
        build(base_momentum=0.004, final_momentum=0.)
