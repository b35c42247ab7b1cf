"""DualAlignFasterRCNN: configs build; train steps on real multi-branch batches
(tiny mosaic + split_semi through the config's pipelines) give finite sup and
dual-alignment losses; the bank fills, lambda ramps, the unlabeled terms leave
the proxies alone and no pseudo label gives zero (not NaN) unlabeled losses."""
import copy
import json
import sys

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from conftest import ROOT, run_tool
from cervdet.models.losses import sigmoid_rampup

CFG_DIR = ROOT / 'configs' / 'semi_dual_align'
CPU_CFG = CFG_DIR / \
    'dual-align_faster-rcnn_r18_fpn_sgd-cpu_semi-25_cervical-mosaic-bethesda-512.py'
PAPER_CFG = CFG_DIR / \
    'dual-align_faster-rcnn_r50_fpn_sgd-20k_semi-25_cervical-mosaic-bethesda-512.py'
UNSUP_KEYS = ('loss_pml_u', 'loss_pmb_u')
DUAL_KEYS = ('loss_pml', 'loss_pmb') + UNSUP_KEYS


EXPECTED_MODEL = {
    'dual-align': 'DualAlignFasterRCNN',
    'mean-teacher': 'SemiBaseDetector',
    'faster-rcnn': 'FasterRCNN',
}


@pytest.mark.parametrize('path', sorted(CFG_DIR.glob('*.py')),
                         ids=lambda p: p.stem)
def test_configs_build(path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(path))
    semi = cfg.model.type != 'FasterRCNN'
    detector = cfg.model.detector if semi else cfg.model
    detector.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == EXPECTED_MODEL[path.stem.split('_')[0]]
    assert [e.type for e in cfg.val_evaluator] == \
        ['CocoMetric', 'IoURangeCocoMetric']
    if not semi:  # the supervised baseline: the labeled fraction only
        assert cfg.train_dataloader.dataset.ann_file.endswith(
            'semi/train_labeled_25.json')
        return
    assert cfg.train_dataloader.sampler.type == 'GroupMultiSourceSampler'
    assert list(cfg.train_dataloader.sampler.source_ratio) == [1, 1]
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    assert labeled.ann_file.endswith('semi/train_labeled_25.json')
    assert unlabeled.ann_file.endswith('semi/train_unlabeled_25.json')
    assert [h.type for h in cfg.custom_hooks] == ['MeanTeacherHook']
    if 'no-proxy' in path.stem:
        assert not model.with_proxy and model.with_prototype
    if 'no-prototype' in path.stem:
        assert model.with_proxy and not model.with_prototype


@pytest.fixture(scope='module')
def semi_batch(tiny_mosaic):
    """A 2 labeled + 2 unlabeled batch through the CPU config's pipelines."""
    sys.path.insert(0, str(ROOT / 'tools' / 'dataset_converters'))
    import split_semi
    semi_dir = tiny_mosaic / 'annotations' / 'semi'
    if not (semi_dir / 'train_labeled_25.json').is_file():
        assert split_semi.main([
            str(tiny_mosaic / 'annotations' / 'train.json'), '--out-dir',
            str(semi_dir), '--percents', '25', '--seed', '0'
        ]) == 0
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CPU_CFG))
    datasets = []
    for ds_cfg in cfg.train_dataloader.dataset.datasets:
        ds_cfg.data_root = str(tiny_mosaic) + '/'
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


def _model(**semi_train_cfg):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg = Config.fromfile(str(CPU_CFG))
    cfg.model.detector.backbone.init_cfg = None
    cfg.model.semi_train_cfg.update(semi_train_cfg)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # the EMA teacher starts as the student (MeanTeacherHook.before_train)
    model.teacher.load_state_dict(model.student.state_dict())
    return model


def _f(value) -> float:
    return float(torch.as_tensor(value).detach())


def _losses(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_train_steps(semi_batch):
    # a random teacher scores ~1/6 per class: a low threshold gives pseudo
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
    # the bank is full from step 2: the labeled prototype term is active
    assert _f(log_vars['loss_pmb']) > 0
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
    g_proxy, g_head = torch.autograd.grad(
        unsup, [proxies, head_w], allow_unused=True, retain_graph=True)
    assert g_proxy is None or torch.count_nonzero(g_proxy) == 0
    assert g_head is not None and torch.count_nonzero(g_head) > 0
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


def test_ablations_drop_terms(semi_batch):
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CPU_CFG))
    cfg.model.detector.backbone.init_cfg = None
    cfg.model.update(with_proxy=False)
    model = MODELS.build(cfg.model)
    losses = _losses(model, semi_batch)
    assert 'loss_pml' not in losses and 'loss_pmb' in losses
    cfg.model.update(with_proxy=True, with_prototype=False)
    model = MODELS.build(cfg.model)
    losses = _losses(model, semi_batch)
    assert 'loss_pmb' not in losses and 'bank_fill' not in losses
    assert 'loss_pml' in losses and not hasattr(model, 'bank')
    # inference is a plain Faster R-CNN (student or teacher)
    model.eval()
    data = model.data_preprocessor(
        dict(inputs=semi_batch['inputs']['sup'][:1],
             data_samples=semi_batch['data_samples']['sup'][:1]), False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert len(preds) == 1 and 'pred_instances' in preds[0]


def test_train_tool_runs_semi_config(semi_batch, tiny_mosaic, tmp_path):
    """tools/train.py with the CPU config: GroupMultiSourceSampler batches,
    MeanTeacherHook, TeacherStudentValLoop and both evaluators."""
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
    val = [r for r in records if 'teacher/coco/bbox_mAP' in r]
    assert val and 'student/iou_range/bbox_mAP_10_70' in val[-1]
    assert (work / 'iter_4.pth').is_file()


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
