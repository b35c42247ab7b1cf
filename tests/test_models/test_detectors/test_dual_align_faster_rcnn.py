"""DualAlignFasterRCNN (Chai et al., ISBI 2022): the configs build with the
paper's settings; the default pseudo labels come from the network's own
prediction (Eq. 3) with no teacher; train steps on real multi-branch batches
(tiny mosaic + split_semi through the config's pipelines) give finite sup
and dual-alignment losses; the bank fills, lambda ramps, the unlabeled terms
leave the proxies alone; the EMA-teacher option still works; a short run
learns."""
import copy
import json
import re
import sys

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope

from cervdet.models.detectors.dual_align_faster_rcnn import bbox_head_features
from cervdet.models.losses import select_pseudo_labels, sigmoid_rampup
from conftest import ROOT, run_tool

CFG_DIR = ROOT / 'configs' / 'semi_dual_align'
DATA = 'cervical-mosaic-bethesda-512'
CPU_CFG = CFG_DIR / \
    f'dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_{DATA}.py'
EMA_CFG = CFG_DIR / \
    f'dual-align-ema-teacher_faster-rcnn_r101_fpn_sgd-120k_semi-25_{DATA}.py'
UNSUP_KEYS = ('loss_pml_u', 'loss_pmb_u')
DUAL_KEYS = ('loss_pml', 'loss_pmb') + UNSUP_KEYS

EXPECTED_MODEL = {
    'dual-align': 'DualAlignFasterRCNN',
    'dual-align-ema-teacher': 'DualAlignFasterRCNN',
    'mean-teacher': 'SemiBaseDetector',
    'faster-rcnn': 'FasterRCNN',
}


def _no_download(cfg):
    detector = cfg.model.detector if 'detector' in cfg.model else cfg.model
    detector.backbone.init_cfg = None
    detector.pop('init_cfg', None)
    return cfg


@pytest.mark.parametrize('path', sorted(CFG_DIR.glob('*.py')),
                         ids=lambda p: p.stem)
def test_configs_build(path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(path))
    semi = cfg.model.type != 'FasterRCNN'
    detector = cfg.model.detector if semi else cfg.model
    if '_r101_' in path.stem:  # the paper: ImageNet ResNet-101 + FPN
        assert detector.backbone.depth == 101
        assert detector.backbone.init_cfg.checkpoint == \
            'torchvision://resnet101'
        assert detector.neck.type == 'FPN'
        # SGD 0.005, momentum 0.9, x0.1 every 40k iterations (Sec. 2.3)
        assert cfg.optim_wrapper.optimizer.lr == 0.005
        assert cfg.optim_wrapper.optimizer.momentum == 0.9
        assert [(s.type, s.step_size, s.gamma) for s in cfg.param_scheduler
                ] == [('StepLR', 40000, 0.1)]
        # batch 8 on 2 GPUs
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.auto_scale_lr.base_batch_size == 8
    model = MODELS.build(_no_download(cfg).model)
    assert type(model).__name__ == EXPECTED_MODEL[path.stem.split('_')[0]]
    # the CRIC-field configs add the point metric (docs/point_metric.md)
    expected = ['CocoMetric', 'IoURangeCocoMetric'] + (
        ['PointHitMetric'] if 'cric-cervix' in path.stem else [])
    assert [e.type for e in cfg.val_evaluator] == expected
    percent = int(re.search(r'_(?:semi|sup)-(\d+)', path.stem).group(1))
    if not semi:  # the supervised baseline: the labeled fraction only
        assert cfg.train_dataloader.dataset.ann_file.endswith(
            f'semi/train_labeled_{percent}.json')
        return
    assert cfg.train_dataloader.sampler.type == 'GroupMultiSourceSampler'
    assert list(cfg.train_dataloader.sampler.source_ratio) == [1, 1]
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    assert labeled.ann_file.endswith(f'semi/train_labeled_{percent}.json')
    # one unlabeled set for every row (Sec. 3.2)
    assert unlabeled.ann_file.endswith('semi/train_unlabeled.json')
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    if type(model).__name__ == 'SemiBaseDetector' or \
            model.pseudo_labeler == 'ema_teacher':
        assert hooks == ['MeanTeacherHook'] and hasattr(model, 'teacher')
        assert cfg.val_cfg.type == 'TeacherStudentValLoop'
        return
    # the paper: the network's own pseudo labels, no teacher, no EMA hook
    assert model.pseudo_labeler == 'self' and not hasattr(model, 'teacher')
    assert 'MeanTeacherHook' not in hooks and cfg.val_cfg.type == 'ValLoop'
    assert model.score_thr == 0.5
    if model.with_prototype:
        assert model.bank.size == 1024
        assert model.prototype_loss.margin == 1.0
        assert model.prototype_loss.with_batch_inter
        assert model.prototype_loss.normalize == 'num_classes'
    assert model.feature_source == 'bbox_head'
    assert model.metric_head.in_channels == \
        detector.roi_head.bbox_head.fc_out_channels
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys[
        'proxy_loss.proxies'].lr_mult * cfg.optim_wrapper.optimizer.lr == \
        pytest.approx(0.01)
    if '_r101_' in path.stem and model.with_proxy:
        assert model.proxy_loss.denominator == 'exclude_true'  # Eq. (2)
    if 'no-proxy' in path.stem:
        assert not model.with_proxy and model.with_prototype
    if 'no-prototype' in path.stem:
        assert model.with_proxy and not model.with_prototype


def test_proxies_get_lr_001_in_the_optimizer():
    """Sec. 2.3: proxies by SGD at lr 0.01, the rest at 0.005."""
    init_default_scope('mmdet')
    cfg = _no_download(Config.fromfile(str(CPU_CFG)))
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    proxies = model.proxy_loss.proxies
    lrs = {}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = group['lr']
    assert lrs[id(proxies)] == pytest.approx(0.01)
    others = {lr for i, lr in lrs.items() if i != id(proxies)}
    assert others and all(lr == pytest.approx(0.005) for lr in others)


def test_self_mode_refuses_teacher_settings():
    init_default_scope('mmdet')
    cfg = _no_download(Config.fromfile(str(CPU_CFG)))
    cfg.model.semi_test_cfg = dict(predict_on='teacher')
    with pytest.raises(ValueError, match="pseudo_labeler='self'"):
        MODELS.build(cfg.model)
    cfg.model.semi_test_cfg = dict()
    cfg.model.pseudo_labeler = 'teacher'
    with pytest.raises(ValueError, match='pseudo_labeler must be one of'):
        MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def split_dir(tiny_mosaic):
    from cervdet.datasets.semi_split import write_semi_split
    semi_dir = tiny_mosaic / 'annotations' / 'semi'
    if not (semi_dir / 'train_unlabeled.json').is_file():
        write_semi_split(tiny_mosaic / 'annotations' / 'train.json', semi_dir,
                         percents=[25], seed=0, force_overwrite=True)
    return semi_dir


def _batch(cfg_path, tiny_mosaic):
    """A 2 labeled + 2 unlabeled batch through a config's pipelines."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(cfg_path))
    datasets = []
    for ds_cfg in cfg.train_dataloader.dataset.datasets:
        ds_cfg.data_root = str(tiny_mosaic) + '/'
        if cfg_path == EMA_CFG:  # 384 px as the CPU config
            for t in ds_cfg.pipeline:
                if t['type'] == 'Resize':
                    t['scale'] = (384, 384)
        datasets.append(DATASETS.build(ds_cfg))
    labeled, unlabeled = datasets
    # the labeled images with boxes first
    n_box = [len(labeled.get_data_info(i)['instances'])
             for i in range(len(labeled))]
    order = sorted(range(len(labeled)), key=lambda i: -n_box[i])
    assert n_box[order[0]] > 0
    torch.manual_seed(0)
    items = [labeled[order[i % len(order)]] for i in range(2)] + \
        [unlabeled[i] for i in range(2)]
    return pseudo_collate(items)


@pytest.fixture(scope='module')
def semi_batch(tiny_mosaic, split_dir):
    return _batch(CPU_CFG, tiny_mosaic)


def _model(**semi_train_cfg):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg = _no_download(Config.fromfile(str(CPU_CFG)))
    cfg.model.semi_train_cfg.update(semi_train_cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _f(value) -> float:
    return float(torch.as_tensor(value).detach())


def _losses(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_bbox_head_features_match_the_head(semi_batch):
    """H and the logits of bbox_head_features are those of the head's own
    forward (Shared2FCBBoxHead)."""
    model = _model()
    head = model.student.roi_head.bbox_head
    feats = torch.randn(7, 64, 7, 7)
    shared, cls_score = bbox_head_features(head, feats)
    ref_cls, _ = head(feats)
    assert torch.allclose(cls_score, ref_cls)
    assert shared.shape == (7, head.shared_out_channels)


def test_self_pseudo_labels_are_the_networks_thresholded_prediction(
        semi_batch):
    """Eq. (3): every RPN proposal of the unlabeled image whose own
    foreground probability is > score_thr keeps its best class; nothing
    comes from a teacher (there is none)."""
    model = _model(score_thr=0.18)
    model.train()
    data = model.data_preprocessor(copy.deepcopy(semi_batch), True)
    inputs, samples = data['inputs']['unsup'], data['data_samples']['unsup']
    torch.manual_seed(0)
    embeds_u, labels_u, weights_u = model.self_pseudo_embeddings(
        inputs, samples)
    # the same proposals and scores through mmdet's own RoI head path
    student = model.student
    with torch.no_grad():
        x = student.extract_feat(inputs)
        props = student.rpn_head.predict(x, samples, rescale=False)
        for p in props:
            p.priors = p.pop('bboxes') if 'bboxes' in p else p.priors
        rois = torch.cat([
            torch.cat([p.priors.new_full((len(p), 1), i), p.priors], 1)
            for i, p in enumerate(props)])
        cls_score = student.roi_head._bbox_forward(x, rois)['cls_score']
    probs = cls_score.softmax(-1)
    fg, label = probs[:, :-1].max(1)
    keep = fg > 0.18
    assert 0 < int(keep.sum()) < len(keep)  # the threshold bites
    assert embeds_u.shape == (int(keep.sum()),
                              model.metric_head.out_channels)
    assert torch.equal(labels_u, label[keep])
    assert torch.allclose(weights_u, fg[keep], atol=1e-6)
    assert (weights_u > 0.18).all() and not weights_u.requires_grad
    assert embeds_u.requires_grad
    ref = select_pseudo_labels(probs, model.num_classes, 0.18)
    assert torch.equal(ref[2], keep)


def test_train_steps(semi_batch):
    # a random network scores ~1/6 per class: a low threshold gives pseudo
    # labels
    rampup = 10
    model = _model(score_thr=0.1, rampup_iters=rampup)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3,
                                         momentum=0.9))
    fills, lams = [], []
    for step in range(3):
        log_vars = model.train_step(copy.deepcopy(semi_batch), optim)
        for key in DUAL_KEYS + ('sup_loss_cls', 'sup_loss_bbox',
                                'sup_loss_rpn_cls', 'sup_loss_rpn_bbox'):
            assert key in log_vars, key
            assert torch.isfinite(torch.as_tensor(log_vars[key])), key
        assert torch.isfinite(torch.as_tensor(log_vars['loss']))
        assert log_vars['num_pseudo'] > 0
        fills.append(_f(log_vars['bank_fill']))
        lams.append(_f(log_vars['lambda_u']))
        assert lams[-1] == pytest.approx(sigmoid_rampup(step, rampup),
                                         rel=1e-5)
    assert fills[0] > 0 and fills[1] > fills[0] and fills[2] > fills[1]
    assert lams[0] < lams[1] < lams[2] < 1
    assert int(model.num_iters) == 3
    assert _f(log_vars['loss_pmb']) > 0 and _f(log_vars['loss_pmb_u']) > 0
    # non-loss logs are not summed into the total
    total = sum(_f(v) for k, v in log_vars.items()
                if 'loss' in k and k != 'loss')
    assert _f(log_vars['loss']) == pytest.approx(total, rel=1e-4)


def test_unlabeled_terms_leave_proxies(semi_batch):
    model = _model(score_thr=0.1, rampup_iters=0)
    model.train()
    _losses(model, semi_batch)  # one step fills the bank
    losses = _losses(model, semi_batch)
    assert float(losses['num_pseudo']) > 0
    unsup = sum(losses[k] for k in UNSUP_KEYS)
    proxies = model.proxy_loss.proxies
    head_w = model.metric_head.fc2.weight
    backbone_w = model.student.backbone.conv1.weight
    g_proxy, g_head, g_backbone = torch.autograd.grad(
        unsup, [proxies, head_w, backbone_w], allow_unused=True,
        retain_graph=True)
    assert g_proxy is None or torch.count_nonzero(g_proxy) == 0
    assert g_head is not None and torch.count_nonzero(g_head) > 0
    # the unlabeled terms train the network's features (Sec. 2.1)
    assert g_backbone is not None and torch.count_nonzero(g_backbone) > 0
    (g_proxy_l, ) = torch.autograd.grad(losses['loss_pml'], [proxies])
    assert torch.count_nonzero(g_proxy_l) > 0


def test_no_pseudo_labels_zero_unlabeled_losses(semi_batch):
    model = _model(score_thr=0.99, rampup_iters=0)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    for _ in range(2):  # the second step has a filled bank
        log_vars = model.train_step(copy.deepcopy(semi_batch), optim)
        assert _f(log_vars['num_pseudo']) == 0
        for key in UNSUP_KEYS:
            assert _f(log_vars[key]) == 0, key
        assert torch.isfinite(torch.as_tensor(log_vars['loss']))
        assert _f(log_vars['loss_pml']) != 0


def test_empty_labeled_batch_keeps_proxies_and_bank(semi_batch):
    model = _model(score_thr=0.1, rampup_iters=0)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-2))
    batch = copy.deepcopy(semi_batch)
    for sample in batch['data_samples']['sup']:
        if sample is not None:
            sample.gt_instances = sample.gt_instances[
                sample.gt_instances.labels < 0]
    proxies = model.proxy_loss.proxies.detach().clone()
    log_vars = model.train_step(batch, optim)
    assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    assert _f(log_vars['loss_pml']) == 0
    assert _f(log_vars['bank_fill']) == 0
    assert torch.equal(model.proxy_loss.proxies.detach(), proxies)


def test_wrong_branches_give_a_clear_error(semi_batch):
    model = _model()
    data = model.data_preprocessor(copy.deepcopy(semi_batch), True)
    inputs = dict(data['inputs'])
    inputs['unsup_student'] = inputs.pop('unsup')
    with pytest.raises(KeyError, match="missing \\['unsup'\\]"):
        model.loss(inputs, data['data_samples'])


def test_ablations_and_feature_source(semi_batch):
    init_default_scope('mmdet')
    cfg = _no_download(Config.fromfile(str(CPU_CFG)))
    cfg.model.update(with_proxy=False)
    model = MODELS.build(cfg.model)
    losses = _losses(model, semi_batch)
    assert 'loss_pml' not in losses and 'loss_pmb' in losses
    cfg.model.update(with_proxy=True, with_prototype=False,
                     feature_source='roi_extractor')
    model = MODELS.build(cfg.model)
    assert model.metric_head.in_channels == 64 * 7 * 7
    losses = _losses(model, semi_batch)
    assert 'loss_pmb' not in losses and 'bank_fill' not in losses
    assert 'loss_pml' in losses and not hasattr(model, 'bank')
    # inference is a plain Faster R-CNN of the one network
    model.eval()
    data = model.data_preprocessor(
        dict(inputs=semi_batch['inputs']['sup'][:1],
             data_samples=semi_batch['data_samples']['sup'][:1]), False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 1 and 'pred_instances' in preds[0]


def test_loading_plain_and_teacher_checkpoints():
    model = _model()
    detector_sd = {k: v + 1 if v.is_floating_point() else v
                   for k, v in model.student.state_dict().items()}
    missing, unexpected = model.load_state_dict(detector_sd, strict=False)
    assert not unexpected and not any(k.startswith('student.')
                                      for k in missing)
    w = model.student.backbone.conv1.weight
    assert torch.equal(w, detector_sd['backbone.conv1.weight'])
    # an 'ema_teacher' checkpoint: the student loads, teacher.* is dropped
    full = {f'student.{k}': v for k, v in detector_sd.items()}
    full.update({f'teacher.{k}': v * 0 for k, v in detector_sd.items()})
    full.update({k: v for k, v in model.state_dict().items()
                 if not k.startswith('student.')})
    model.load_state_dict(full, strict=True)
    assert torch.equal(model.student.backbone.conv1.weight,
                       detector_sd['backbone.conv1.weight'])


def test_ema_teacher_option_steps(tiny_mosaic, split_dir):
    """pseudo_labeler='ema_teacher' (not the paper): weak/strong views, the
    teacher's detections; the CPU detector for speed."""
    init_default_scope('mmdet')
    batch = _batch(EMA_CFG, tiny_mosaic)
    cfg = Config.fromfile(str(EMA_CFG))
    cpu = Config.fromfile(str(CPU_CFG))
    cfg.model.detector = cpu.model.detector
    cfg.model.metric_head = cpu.model.metric_head
    cfg.model.semi_train_cfg.score_thr = 0.1
    torch.manual_seed(0)
    model = MODELS.build(_no_download(cfg).model)
    model.init_weights()
    model.teacher.load_state_dict(model.student.state_dict())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    for _ in range(2):
        log_vars = model.train_step(copy.deepcopy(batch), optim)
        for key in DUAL_KEYS:
            assert torch.isfinite(torch.as_tensor(log_vars[key])), key
    assert _f(log_vars['num_pseudo']) > 0
    assert all(not p.requires_grad for p in model.teacher.parameters())


def test_short_run_learns(semi_batch):
    """20 CPU steps on one fixed real batch: the total loss, the supervised
    classification loss and the labeled dual-alignment terms fall; the
    unlabeled terms are active at the start (own pseudo labels > 0.1)."""
    torch.manual_seed(0)  # the model's initialisation too: deterministic
    model = _model(score_thr=0.1, rampup_iters=0,
                   unsup_proposal=dict(nms_pre=300, max_per_img=50,
                                       nms=dict(type='nms',
                                                iou_threshold=0.7),
                                       min_bbox_size=0))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01,
                                         momentum=0.9),
                         clip_grad=dict(max_norm=35))
    torch.manual_seed(0)
    logs = [model.train_step(copy.deepcopy(semi_batch), optim)
            for _ in range(20)]

    def mean(key, sl):
        return sum(_f(log[key]) for log in logs[sl]) / len(logs[sl])

    assert _f(logs[0]['num_pseudo']) > 0
    assert _f(logs[0]['loss_pml_u']) > 0 and _f(logs[0]['loss_pmb_u']) > 0
    first, last = slice(0, 5), slice(-5, None)
    assert mean('loss', last) < 0.6 * mean('loss', first)
    assert mean('sup_loss_cls', last) < mean('sup_loss_cls', first)
    assert mean('loss_pml', last) < 0.8 * mean('loss_pml', first)
    # the bank fills over the first steps: compare from step 2
    assert mean('loss_pmb', last) < mean('loss_pmb', slice(2, 7))


def test_train_tool_runs_semi_config(split_dir, tiny_mosaic, tmp_path):
    """tools/train.py with the CPU config: GroupMultiSourceSampler batches,
    the 'sup' / 'unsup' branches, ValLoop with both evaluators, the proxies'
    own lr group."""
    root = str(tiny_mosaic) + '/'
    cfg = tmp_path / 'dual_align_quick.py'
    cfg.write_text(f"""
_base_ = [{str(CPU_CFG)!r}]
data_root = {root!r}
labeled_dataset = dict(_base_.labeled_dataset, data_root=data_root)
unlabeled_dataset = dict(_base_.unlabeled_dataset, data_root=data_root)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(batch_size=2),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
val_evaluator = [dict(e, ann_file=data_root + 'annotations/val.json')
                 for e in _base_.val_evaluator]
model = dict(semi_train_cfg=dict(score_thr=0.1, rampup_iters=4))
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=4))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
""")
    work = tmp_path / 'work'
    proc = run_tool([sys.executable, 'tools/train.py', cfg, '--work-dir',
                     work], timeout=600)
    logs = sorted(work.rglob('*.json'))
    records = [json.loads(line) for f in logs if f.name != 'scalars.json'
               for line in f.read_text().splitlines() if line.strip()]
    train = [r for r in records if 'loss_pml_u' in r]
    assert train, proc.stdout[-3000:]
    for key in DUAL_KEYS + ('num_pseudo', 'bank_fill', 'lambda_u'):
        assert all(torch.isfinite(torch.tensor(r[key])) for r in train), key
    assert train[-1]['lambda_u'] == pytest.approx(sigmoid_rampup(3, 4),
                                                  rel=1e-3)
    val = [r for r in records if 'coco/bbox_mAP' in r]
    assert val and 'iou_range/bbox_mAP_10_70' in val[-1]
    assert (work / 'iter_4.pth').is_file()
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=False)
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])


@pytest.mark.parametrize('source', ['gt+pos', 'gt'])
def test_labeled_sources(semi_batch, source):
    model = _model()
    model.labeled_source = source
    data = model.data_preprocessor(copy.deepcopy(semi_batch), True)
    samples = data['data_samples']['sup']
    x = model.student.extract_feat(data['inputs']['sup'])
    losses, results = model.student_sup_loss(x, samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if 'loss' in k and isinstance(v, torch.Tensor))
    embeds, labels, weights = model.labeled_embeddings(x, samples, results)
    n_gt = sum(len(s.gt_instances) for s in samples)
    n_pos = sum(int((~r.pos_is_gt.bool()).sum()) for r in results)
    expected = n_gt + n_pos if source == 'gt+pos' else n_gt
    assert embeds.shape == (expected, model.metric_head.out_channels)
    assert labels.shape == weights.shape == (expected, )
    assert labels.min() >= 0 and labels.max() < model.num_classes
    assert ((weights > 0) & (weights <= 1)).all()
    if source == 'gt+pos':
        assert n_pos > 0  # proposals overlap the gts (IoU >= 0.5)
