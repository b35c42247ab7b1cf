"""PCNRetinaNet: losses, gradients, frozen PCN, crops, edge cases, weights."""
import copy
import warnings
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_state_dict

import cervdet  # noqa: F401  (registers the modules)
from cervdet.models.layers import crop_patches, patch_regions

ROOT = Path(__file__).resolve().parents[3]
PCN_CFG = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn-retinanet_r18-w32_fpn_rank-rcc_ft-adam-6e_1xb4_cervical-mosaic-bethesda-512.py'
PLAIN_CFG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
PATCH = 64


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Build as the runner does: default scope 'mmdet'."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def model_cfg(**distill):
    cfg = copy.deepcopy(Config.fromfile(str(PCN_CFG)).model)
    cfg.pcn_checkpoint = None
    cfg.patch_cfg.size = PATCH
    cfg.distill_cfg.update(dict(score_thr=0.0, topk=5), **distill)
    return cfg


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "PCN keeps random weights"
        model.init_weights()
    return model


def batch(model, num_items=(3, 0), size=128):
    data = demo_mm_inputs(
        len(num_items), [[3, size, size]] * len(num_items),
        num_items=list(num_items), num_classes=5)
    return model.data_preprocessor(data, True)


@pytest.fixture(scope='module')
def model():
    with DefaultScope.overwrite_default_scope('mmdet'):
        return build(model_cfg())


def test_loss_keys_finite_and_k_boxes_per_image(model):
    model.train()
    data = batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_cls', 'loss_bbox', 'loss_rank', 'loss_rcc'):
        assert key in losses
        value = sum(losses[key]) if isinstance(losses[key], list) \
            else losses[key]
        assert torch.isfinite(value).all(), key
    assert losses['loss_rcc'] > 0
    # score_thr 0: every image has far more than K = 5 candidates
    assert losses['pcn_boxes'].item() == 5


def test_gradients_reach_detector_but_no_pcn_parameter(model):
    model.train()
    model.zero_grad()
    data = batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert losses['loss_rank'] > 0
    losses['loss_rank'].backward(retain_graph=True)
    assert model.bbox_head.retina_cls.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.pcn.parameters())
    model.zero_grad()
    losses['loss_rcc'].backward()
    # RCC flows through the ROI features into the FPN and the backbone
    assert model.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.pcn.parameters())
    assert not any(p.requires_grad for p in model.pcn.parameters())


def test_pcn_stays_in_eval_mode_and_its_statistics_frozen(model):
    from mmengine.optim import build_optim_wrapper
    model.train()
    assert model.training and model.backbone.training
    assert not any(m.training for m in model.pcn.modules())
    pcn_bn = model.pcn.backbone.bn1
    det_bn = model.backbone.bn1
    before_pcn = pcn_bn.running_mean.clone()
    before_det = det_bn.running_mean.clone()
    optim = build_optim_wrapper(
        model, dict(optimizer=dict(type='Adam', lr=1e-4)))
    data = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_items=[3, 2],
                          num_classes=5)
    log_vars = model.train_step(data, optim)
    assert torch.isfinite(log_vars['loss'])
    assert torch.equal(pcn_bn.running_mean, before_pcn)
    assert not torch.equal(det_bn.running_mean, before_det)
    assert not any(m.training for m in model.pcn.modules())


def test_no_detection_gives_zero_losses_and_trains():
    m = build(model_cfg(score_thr=0.05))
    torch.nn.init.constant_(m.bbox_head.retina_cls.bias, -20.)  # p ~ 2e-9
    m.train()
    data = batch(m)
    losses = m.loss(data['inputs'], data['data_samples'])
    assert losses['pcn_boxes'].item() == 0
    assert losses['loss_rank'].item() == 0 and losses['loss_rcc'].item() == 0
    total, _ = m.parse_losses(losses)
    total.backward()
    assert m.bbox_head.retina_cls.weight.grad is not None


def test_k_larger_than_available_boxes():
    m = build(model_cfg(topk=100000, nms_pre=50))
    m.train()
    data = batch(m)
    x = m.extract_feat(data['inputs'])
    cls_scores, bbox_preds = m.bbox_head(x)
    metas = [s.metainfo for s in data['data_samples']]
    sel, _ = m.select_boxes(cls_scores, bbox_preds, metas)
    counts = torch.bincount(sel['batch_idx'], minlength=2)
    # at most nms_pre candidates per image survive, all of them are used
    assert 0 < counts.max() <= 50
    losses = m.distill_loss(data['inputs'], x, cls_scores, bbox_preds, metas)
    assert losses['pcn_boxes'].item() == pytest.approx(counts.sum().item() / 2)
    assert torch.isfinite(losses['loss_rank']) and torch.isfinite(
        losses['loss_rcc'])


def test_pcn_inputs_are_the_boxes_in_pcn_normalisation(model):
    data = demo_mm_inputs(2, [[3, 96, 128]] * 2, num_items=[1, 1],
                          num_classes=5)
    raw_bgr = torch.stack(data['inputs']).float()          # as loaded (BGR)
    inputs = model.data_preprocessor(data, False)['inputs']  # RGB, normalised
    rois = torch.tensor([[0., 10., 20., 50., 40.], [1., 60., 5., 120., 90.]])
    got = model.pcn_inputs(inputs, rois)
    assert got.shape == (2, 3, PATCH, PATCH)
    regions = patch_regions(rois[:, 1:], scale=1.5, square=True)
    mean_bgr = model.data_preprocessor.mean.flatten().flip(0)
    crops = crop_patches(raw_bgr, torch.cat([rois[:, :1], regions], 1), PATCH,
                         fill=mean_bgr)
    pcn_pp = model.pcn.data_preprocessor
    expected = (crops.flip(1) - pcn_pp.mean) / pcn_pp.std   # PCN: to_rgb
    assert torch.allclose(got, expected, atol=1e-3)


def test_checkpoint_has_no_pcn_and_loads_into_plain_retinanet(model):
    state = model.state_dict()
    assert state and not any(k.startswith('pcn.') for k in state)
    plain = build(Config.fromfile(str(PLAIN_CFG)).model, seed=1)
    plain.load_state_dict(state, strict=True)
    model.eval()
    plain.eval()
    data = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_items=[2, 2],
                          num_classes=5)
    with torch.no_grad():
        a = model.test_step(copy.deepcopy(data))
        b = plain.test_step(copy.deepcopy(data))
    for pa, pb in zip(a, b):
        assert torch.equal(pa.pred_instances.bboxes, pb.pred_instances.bboxes)
        assert torch.equal(pa.pred_instances.scores, pb.pred_instances.scores)
        assert torch.equal(pa.pred_instances.labels, pb.pred_instances.labels)
    # and back: RetinaNet weights load into PCNRetinaNet without missing keys
    other = build(model_cfg(), seed=2)
    other.load_state_dict(plain.state_dict(), strict=True)
    # MMEngine's loader (load_from, --resume) raises on any missing key
    load_state_dict(other, plain.state_dict(), strict=True)


def test_pcn_checkpoint_is_loaded_strictly(tmp_path):
    pcn_cfg = copy.deepcopy(model_cfg().pcn)
    pcn_cfg['_scope_'] = 'mmpretrain'
    torch.manual_seed(5)
    pcn = MODELS.build(pcn_cfg)
    path = tmp_path / 'pcn.pth'
    torch.save(dict(state_dict=pcn.state_dict(), meta=dict()), path)
    cfg = model_cfg()
    cfg.pcn_checkpoint = str(path)
    m = build(cfg, seed=0)
    for (k, v), (k2, v2) in zip(pcn.state_dict().items(),
                                m.pcn.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert not m.pcn.training

    cfg.pcn_checkpoint = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='model.pcn_checkpoint'):
        build(cfg)
    wrong = copy.deepcopy(pcn_cfg)
    wrong.head.num_classes = 3
    torch.save(dict(state_dict=MODELS.build(wrong).state_dict()),
               tmp_path / 'wrong.pth')
    cfg.pcn_checkpoint = str(tmp_path / 'wrong.pth')
    with pytest.raises(RuntimeError, match='does not fit model.pcn'):
        build(cfg)


def test_score_modes_and_config_errors(model):
    probs = torch.tensor([[0.7, 0.3], [0.1, 0.9]])
    assert torch.allclose(model.refined_scores(probs, torch.tensor([4, 0])),
                          torch.tensor([0.3, 0.9]))
    cfg = model_cfg()
    cfg.pcn_score = 'class'
    with pytest.raises(ValueError, match="pcn_score='class'"):
        MODELS.build(cfg)
    cfg.pcn.head.num_classes = 6
    cfg.pcn.data_preprocessor.num_classes = 6
    m = MODELS.build(cfg)
    probs6 = torch.arange(12.).reshape(2, 6)
    # normal at 0: detector class c is PCN class c + 1
    assert m.refined_scores(probs6, torch.tensor([0, 4])).tolist() == [1., 11.]
    cfg = model_cfg()
    cfg.pcn_local_stage = 3
    with pytest.raises(ValueError, match='earlier stage'):
        MODELS.build(cfg)


def test_distiller_interface_scales_and_stops_distillation(model):
    """DistillationHook's interface: ``teacher`` is the PCN, the weight
    scales loss_rank / loss_rcc, disabled skips the PCN (same keys, 0)."""
    from unittest.mock import MagicMock

    from cervdet.engine.hooks import DistillationHook
    assert model.teacher is model.pcn and model.student_prefix == ''
    assert model.distill_weight == 1.0 and model.distill_enabled
    model.train()
    data = batch(model)
    with torch.no_grad():
        torch.manual_seed(0)
        full = model.loss(data['inputs'], data['data_samples'])
        runner = MagicMock(model=model, iter=0, epoch=0)
        DistillationHook(warmup_iters=4).before_train_iter(runner, 0)
        assert model.distill_weight == 0.25 and model.distill_enabled
        torch.manual_seed(0)
        quarter = model.loss(data['inputs'], data['data_samples'])
        for key in ('loss_rank', 'loss_rcc'):
            assert quarter[key].item() == pytest.approx(
                0.25 * full[key].item(), rel=1e-5)
        calls = []
        handle = model.pcn.backbone.register_forward_hook(
            lambda *a: calls.append(1))
        DistillationHook(stop_iter=0).before_train_iter(runner, 0)
        off = model.loss(data['inputs'], data['data_samples'])
        handle.remove()
    assert not calls and not model.distill_enabled
    assert off['loss_rank'].item() == off['loss_rcc'].item() == 0
    assert off['loss_cls'] is not None and 'pcn_boxes' in off
    model.distill_weight, model.distill_enabled = 1.0, True


def test_checkpoint_with_pcn_weights_still_loads(model):
    """A state dict that holds the PCN (the frozen-teacher policy leaves it
    out; an older or hand-made one may not) loads strictly, into the PCN."""
    state = model.state_dict()
    old = dict(state, **{'pcn.' + k: v
                         for k, v in model.pcn.state_dict().items()})
    other = build(model_cfg(), seed=3)
    result = other.load_state_dict(old, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in model.pcn.state_dict().items():
        assert torch.equal(other.pcn.state_dict()[k], v), k
    load_state_dict(other, old, strict=True)
