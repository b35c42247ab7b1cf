"""FeatureDistiller: frozen teacher, feature taps, losses that train the student,
student-only weights that load into the plain student."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from cervdet.engine.hooks import student_checkpoint
from cervdet.models.detectors import extract_student_state_dict, parse_feature_spec
from conftest import ROOT

STUDENT_CFG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
TEACHER_CFG = ROOT / 'configs' / 'fgd' / 'teachers' / \
    'retinanet_r18_fpn-128_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
SSD_CFG = ROOT / 'configs' / 'fgd' / 'students' / \
    'ssd512_vgg16_adam-120e_cervical-mosaic-bethesda-512.py'


def _model_cfg(path):
    cfg = Config.fromfile(str(path)).model
    cfg.backbone.init_cfg = None
    return cfg


# FPN widths of the CPU student and teacher (read: the student's may be tuned)
C_S = _model_cfg(STUDENT_CFG).neck.out_channels
C_T = _model_cfg(TEACHER_CFG).neck.out_channels


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    init_default_scope('mmdet')
    torch.manual_seed(1)
    teacher = MODELS.build(_model_cfg(TEACHER_CFG))
    teacher.init_weights()
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return str(path)


def _pairs(levels=5, spec='neck.fpn_convs.{}.conv', **loss_kw):
    return [
        dict(name=f'fpn{i}', student=spec.format(i), teacher=spec.format(i),
             loss=dict(type='FGDLoss', student_channels=C_S,
                       teacher_channels=C_T, **loss_kw))
        for i in range(levels)
    ]


def _distiller(teacher_ckpt, **kw):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg = dict(type='FeatureDistiller', student=_model_cfg(STUDENT_CFG),
               teacher_cfg=str(TEACHER_CFG), teacher_ckpt=teacher_ckpt,
               feature_pairs=_pairs())
    cfg.update(kw)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(size=64, num_items=(6, 0), seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(len(num_items), [[3, size, size]] * len(num_items),
                          num_items=list(num_items), num_classes=5)


def test_feature_spec_parsing():
    assert parse_feature_spec('neck.fpn_convs.0.conv') == \
        ('neck.fpn_convs.0.conv', None)
    assert parse_feature_spec('neck[3]') == ('neck', 3)
    assert parse_feature_spec('backbone[-1]') == ('backbone', -1)
    with pytest.raises(ValueError, match='module path'):
        parse_feature_spec('neck[a]')


def test_teacher_frozen_in_eval_and_loaded(teacher_ckpt):
    model = _distiller(teacher_ckpt)
    saved = torch.load(teacher_ckpt, weights_only=True)['state_dict']
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, saved[k]), k  # init_weights did not touch it
    model.train()
    assert model.student.training and model.distill_losses.training
    assert not any(m.training for m in model.teacher.modules())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train(True)
    assert not model.teacher.training


def test_train_step_trains_student_only_and_fgd_loss_falls(teacher_ckpt):
    model = _distiller(teacher_ckpt)
    model.train()
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper',
                    optimizer=dict(type='Adam', lr=1e-3)))
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    align_before = model.distill_losses['fpn0'].align.weight.detach().clone()
    data = _batch()
    fgd = []
    for _ in range(6):
        log = model.train_step(data, optim)
        fgd.append(sum(v.item() for k, v in log.items()
                       if k.startswith('loss_distill_')))
    assert {f'loss_distill_fpn{i}' for i in range(5)} <= set(log)
    assert {'loss_cls', 'loss_bbox'} <= set(log)
    # the teacher (weights and BN running statistics) did not change
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    assert all(p.grad is None for p in model.teacher.parameters())
    # the student and the align convs did
    changed = [k for k, v in model.student.state_dict().items()
               if v.dtype.is_floating_point
               and not torch.equal(v, student_before[k])]
    assert any(k.startswith('neck.') for k in changed)
    assert not torch.equal(model.distill_losses['fpn0'].align.weight,
                           align_before)
    # six steps on one batch: the distillation loss falls
    assert fgd[-1] < 0.8 * fgd[0], fgd


def test_distill_weight_scales_and_disabled_skips_teacher(teacher_ckpt):
    model = _distiller(teacher_ckpt)
    model.train()
    data = model.data_preprocessor(_batch(), True)
    with torch.no_grad():
        full = model(**data, mode="loss")
        model.distill_weight = 0.25
        quarter = model(**data, mode="loss")
    for i in range(5):
        k = f'loss_distill_fpn{i}'
        assert quarter[k].item() == pytest.approx(0.25 * full[k].item(),
                                                  rel=1e-5)
    calls = []
    model.teacher.backbone.register_forward_hook(
        lambda *a: calls.append(1))
    model.distill_enabled = False
    off = model(**data, mode="loss")
    assert not calls  # no teacher forward once distillation stopped
    assert all(off[f'loss_distill_fpn{i}'].item() == 0 for i in range(5))
    off['loss_distill_fpn0'].backward()  # still connected to the FGD params
    assert model.distill_losses['fpn0'].align.weight.grad is not None


def test_student_weights_load_into_plain_student_same_predictions(
        teacher_ckpt, tmp_path):
    model = _distiller(teacher_ckpt)
    model.train()
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)))
    model.train_step(_batch(), optim)
    ckpt = student_checkpoint(dict(meta=dict(epoch=1, cfg='x'),
                                   state_dict=model.state_dict()))
    assert not any(k.startswith(('teacher.', 'distill_losses.'))
                   for k in ckpt['state_dict'])
    assert 'cfg' not in ckpt['meta']
    path = tmp_path / 'student.pth'
    torch.save(ckpt, path)

    from mmengine.runner import load_checkpoint
    plain = MODELS.build(_model_cfg(STUDENT_CFG))
    load_checkpoint(plain, str(path), map_location='cpu', strict=True)
    model.eval()
    plain.eval()
    # keep every box (an untrained head scores below the 0.05 threshold)
    model.student.bbox_head.test_cfg.score_thr = 0.0
    plain.bbox_head.test_cfg.score_thr = 0.0
    data = _batch(seed=3, num_items=(3, 2))
    with torch.no_grad():
        a = model.test_step(data)
        b = plain.test_step(data)
    for x, y in zip(a, b):
        assert torch.equal(x.pred_instances.bboxes, y.pred_instances.bboxes)
        assert torch.equal(x.pred_instances.scores, y.pred_instances.scores)
        assert len(x.pred_instances) > 0


def test_checkpoint_without_teacher_resumes_silently(teacher_ckpt):
    model = _distiller(teacher_ckpt)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith('teacher.')}
    other = _distiller(teacher_ckpt)
    result = other.load_state_dict(state, strict=True)
    assert not result.missing_keys
    assert extract_student_state_dict(state).keys() == \
        model.student.state_dict().keys()


def test_bad_feature_pairs_give_clear_errors(teacher_ckpt):
    with pytest.raises(ValueError, match="no module 'neck.fpn_conv.0'"):
        _distiller(teacher_ckpt,
                   feature_pairs=_pairs(1, spec='neck.fpn_conv.{}'))
    with pytest.raises(KeyError, match='lacks'):
        _distiller(teacher_ckpt, feature_pairs=[dict(name='a')])
    with pytest.raises(FileNotFoundError, match='teacher checkpoint'):
        _distiller('/nonexistent/teacher.pth')
    with pytest.raises(FileNotFoundError, match='fileDirname'):
        _distiller(teacher_ckpt, teacher_cfg='no/such/config.py')
    # a tuple output without [i]
    model = _distiller(teacher_ckpt, feature_pairs=[
        dict(name='n', student='neck', teacher='neck[0]',
             loss=dict(type='FGDLoss', student_channels=C_S,
                       teacher_channels=C_T))])
    data = model.data_preprocessor(_batch(), True)
    with pytest.raises(TypeError, match=r"\[i\]"):
        model(**data, mode="loss")


def test_ssd_student_retinanet_teacher_levels_and_normalisation(
        teacher_ckpt):
    """SSD512 levels (own channel counts) <- RetinaNet FPN; the teacher sees
    the batch in its own normalisation."""
    init_default_scope('mmdet')
    ssd = _model_cfg(SSD_CFG)
    pairs = [
        dict(name=f'ssd{i}', student=f'neck[{i}]', teacher=f'neck[{i}]',
             loss=dict(type='FGDLoss', student_channels=c,
                       teacher_channels=C_T))
        for i, c in enumerate((512, 1024, 512, 256, 256))
    ]
    torch.manual_seed(0)
    # built by its former name (configs/ld_wsccd and older configs use it)
    model = MODELS.build(dict(type='FGDDistiller', student=ssd,
                              teacher_cfg=str(TEACHER_CFG),
                              teacher_ckpt=teacher_ckpt,
                              feature_pairs=pairs))
    model.init_weights()
    assert not model._same_normalisation  # std 1 vs ImageNet std
    data = _batch(size=512, num_items=(4, ))
    student_in = model.data_preprocessor(copy.deepcopy(data), True)['inputs']
    teacher_in = model.teacher.data_preprocessor(copy.deepcopy(data),
                                                 True)['inputs']
    assert torch.allclose(model._teacher_inputs(student_in), teacher_in,
                          atol=1e-4)
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode="loss")
    for i in range(5):
        v = losses[f'loss_distill_ssd{i}']
        assert torch.isfinite(v) and v.item() > 0
    assert model.distill_losses['ssd1'].align.in_channels == 1024


def test_former_names_are_aliases(teacher_ckpt):
    """Configs written for FGDDistiller / FGDDistillHook still work."""
    from mmdet.registry import HOOKS

    from cervdet.engine.hooks import DistillationHook, FGDDistillHook
    from cervdet.models.detectors import FeatureDistiller, FGDDistiller
    assert FGDDistiller is FeatureDistiller
    assert MODELS.get('FGDDistiller') is MODELS.get('FeatureDistiller') \
        is FeatureDistiller
    assert FGDDistillHook is DistillationHook
    assert HOOKS.get('FGDDistillHook') is HOOKS.get('DistillationHook') \
        is DistillationHook
    model = _distiller(teacher_ckpt, type='FGDDistiller')
    assert type(model) is FeatureDistiller
    model.train()
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    assert {f'loss_distill_fpn{i}' for i in range(5)} <= set(losses)


def test_checkpoints_with_teacher_weights_still_load(teacher_ckpt, tmp_path):
    """The teacher is left out of the state dict; checkpoints saved while it
    was in (``FGDDistillHook(drop_teacher=False)``) load strictly, through
    torch and MMEngine's loader (``load_from``, ``--resume``)."""
    from mmengine.runner import load_checkpoint
    model = _distiller(teacher_ckpt)
    state = model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    old = dict(state, **{'teacher.' + k: v
                         for k, v in model.teacher.state_dict().items()})
    other = _distiller(teacher_ckpt)
    result = other.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    path = tmp_path / 'old.pth'
    torch.save(dict(state_dict=old, meta=dict()), path)
    load_checkpoint(other, str(path), map_location='cpu', strict=True)
