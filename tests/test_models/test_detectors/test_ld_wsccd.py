"""LD-WSCCD: FGD masks from the teacher's detections for images without
boxes, the four paper configs and the CPU one built from file, CPU training
of the full model in process and through tools/train.py (FGDDistillHook with
a WSODDetector student: student-only checkpoints)."""
import copy
import json
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from conftest import ROOT, run_tool
from cervdet.models.detectors import FGDDistiller
from cervdet.models.detectors.fgd_distiller import (gt_boxes_known,
                                                    select_teacher_boxes)

LD = ROOT / 'configs' / 'ld_wsccd'
PAPER_CONFIGS = {
    # name -> (refinement stages K, distilled)
    'ld-wsccd_ssd512-vgg16_mil-k1_adam-120e_cervical-mosaic-bethesda-512.py':
    (1, False),
    'ld-wsccd_ssd512-vgg16_mil-k1_fgd_adam-120e_cervical-mosaic-bethesda-512.py':
    (1, True),
    'ld-wsccd_ssd512-vgg16_mil-k3_adam-120e_cervical-mosaic-bethesda-512.py':
    (3, False),
    'ld-wsccd_ssd512-vgg16_mil-k3_fgd_adam-120e_cervical-mosaic-bethesda-512.py':
    (3, True),
}
LD_CPU = LD / 'ld-wsccd_r18-w32_mil-k3_fgd_adam-cpu_cervical-mosaic-bethesda-512.py'
OICR_CPU = ROOT / 'configs' / 'oicr' / \
    'oicr_r18-w32_adam-cpu_cervical-mosaic-bethesda-512.py'
TEACHER_CPU = ROOT / 'configs' / 'fgd' / 'teachers' / \
    'retinanet_r18_fpn-128_adam-cpu_cervical-mosaic-bethesda-512.py'
TEACHER_R50 = ROOT / 'configs' / 'fgd' / 'teachers' / \
    'retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-512.py'
IMG = 128


def _save_teacher_at_init(cfg_path, path, seed=0):
    """The teacher's architecture at initialisation, as a checkpoint."""
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    cfg = Config.fromfile(str(cfg_path)).model
    cfg.backbone.init_cfg = None
    teacher = MODELS.build(cfg)
    teacher.init_weights()
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def cpu_teacher_ckpt(tmp_path_factory):
    return _save_teacher_at_init(
        TEACHER_CPU, tmp_path_factory.mktemp('ld_t') / 'cpu.pth')


def _cpu_teacher_scoring_all():
    """The CPU teacher, keeping every detection (an untrained teacher scores
    below its 0.05 threshold): teacher boxes exist for the masks."""
    cfg = Config.fromfile(str(TEACHER_CPU)).model
    cfg.test_cfg.score_thr = 0.0
    return cfg.to_dict()


def _cpu_model(teacher_ckpt, **kw) -> FGDDistiller:
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(LD_CPU)).model
    cfg.teacher_ckpt = teacher_ckpt
    cfg.teacher_cfg = _cpu_teacher_scoring_all()
    cfg.update(teacher_score_thr=0.0, teacher_max_boxes=5)
    cfg.update(kw)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(num_classes=5, seed=0):
    """Image 0 keeps two boxes (``has_boxes``), image 1 has image labels
    only; both have 30 proposals. Returns ``inputs`` ``B x Tensor[3, 128,
    128]`` and ``data_samples``."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, (labels, has_boxes) in enumerate((([0, 2], True), ([1], False))):
        xy = torch.rand(30, 2, generator=g) * (IMG - 40)
        props = torch.cat([xy, xy + 10 + torch.rand(30, 2, generator=g) * 30],
                          1)
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(IMG, IMG), ori_shape=(IMG, IMG),
            scale_factor=(1., 1.), img_labels=labels, has_boxes=has_boxes))
        s.proposals = InstanceData(bboxes=props)
        gt = torch.tensor([[8., 10., 40., 50.], [60., 64., 100., 90.]])
        s.gt_instances = InstanceData(
            bboxes=gt if has_boxes else torch.zeros(0, 4),
            labels=torch.tensor(labels if has_boxes else [],
                                dtype=torch.long))
        inputs.append((torch.rand(3, IMG, IMG, generator=g) * 255).byte())
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _capture_boxes(loss_module):
    """Record the boxes every call of an FGDLoss receives."""
    seen, forward = [], loss_module.forward

    def spy(preds_S, preds_T, gt_bboxes, *args, **kwargs):
        seen.append([b.clone() for b in gt_bboxes])
        return forward(preds_S, preds_T, gt_bboxes, *args, **kwargs)

    loss_module.forward = spy
    return seen


def test_select_teacher_boxes_and_known_gt():
    pred = InstanceData(
        bboxes=torch.tensor([[0., 0, 4, 4], [1, 1, 5, 5], [2, 2, 6, 6]]),
        scores=torch.tensor([0.2, 0.9, 0.5]),
        labels=torch.tensor([0, 1, 2]))
    assert select_teacher_boxes(pred, 0.3, 100).tolist() == \
        [[1, 1, 5, 5], [2, 2, 6, 6]]  # threshold, best first
    assert select_teacher_boxes(pred, 0.0, 1).tolist() == [[1, 1, 5, 5]]
    assert len(select_teacher_boxes(pred, 0.0, 0)) == 3  # no limit
    assert select_teacher_boxes(pred, 0.95, 10).shape == (0, 4)
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0))
    assert select_teacher_boxes(empty, 0.0, 10).shape == (0, 4)

    s = _batch()['data_samples']
    assert gt_boxes_known(s[0]) and not gt_boxes_known(s[1])
    # a box-annotated negative field: all background is the truth
    s[1].set_metainfo(dict(has_boxes=True))
    assert gt_boxes_known(s[1])
    plain = DetDataSample()  # no has_boxes: known iff it has boxes
    plain.gt_instances = InstanceData(bboxes=torch.zeros(0, 4))
    assert not gt_boxes_known(plain)
    plain.gt_instances = InstanceData(bboxes=torch.ones(1, 4))
    assert gt_boxes_known(plain)
    with pytest.raises(ValueError, match='fg_boxes'):
        FGDDistiller(student=None, teacher_cfg=None, teacher_ckpt='x',
                     feature_pairs=[], fg_boxes='pred')


def test_teacher_boxes_fill_masks_of_images_without_gt(cpu_teacher_ckpt):
    model = _cpu_model(cpu_teacher_ckpt)
    model.train()
    assert model.fg_boxes == 'gt_or_teacher'
    assert not any(m.training for m in model.teacher.modules())
    seen = _capture_boxes(model.distill_losses['c3'])
    teacher_runs = []
    model.teacher.backbone.register_forward_hook(
        lambda *_: teacher_runs.append(1))
    data = model.data_preprocessor(_batch(), True)
    samples = data['data_samples']
    before = copy.deepcopy(samples)

    losses = model.loss(data['inputs'], samples)
    assert len(teacher_runs) == 1  # predict() also gave the features
    # image 0: its ground truth; image 1: the teacher's 5 best detections
    boxes = seen[-1]
    assert torch.equal(boxes[0], samples[0].gt_instances.bboxes)
    with torch.no_grad():
        ref = model.teacher.predict(
            data['inputs'], [DetDataSample(metainfo=s.metainfo)
                             for s in samples], rescale=False)
    teacher_runs.clear()  # that was the test's own run
    pred = ref[1].pred_instances
    top = pred.scores.sort(descending=True, stable=True).indices[:5]
    assert len(boxes[1]) == 5
    assert torch.allclose(boxes[1], pred.bboxes[top])
    assert not boxes[1].requires_grad
    assert losses['fgd_teacher_boxes'].item() == 5.  # 1 image, 5 boxes

    # the student's samples were not modified (no teacher predictions)
    for s, b in zip(samples, before):
        assert set(s.all_keys()) == set(b.all_keys())
        assert 'pred_instances' not in s
        assert torch.equal(s.gt_instances.bboxes, b.gt_instances.bboxes)
        assert torch.equal(s.proposals.bboxes, b.proposals.bboxes)
        assert s.metainfo.keys() == b.metainfo.keys()

    # the teacher gets no gradient; the student and align conv do
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert model.distill_losses['c3'].align.weight.grad is not None
    assert model.student.backbone.conv1.weight.grad is not None

    # 'teacher': teacher boxes for every image; 'gt': FGD's masks (image 1
    # all background, no teacher detection run)
    model.fg_boxes = 'teacher'
    model.loss(data['inputs'], samples)
    assert len(seen[-1][0]) == 5 and torch.equal(seen[-1][1], boxes[1])
    model.fg_boxes = 'gt'
    out = model.loss(data['inputs'], samples)
    assert seen[-1][1].shape == (0, 4) and 'fgd_teacher_boxes' not in out
    assert len(teacher_runs) == 2  # once per step


@pytest.fixture(scope='module')
def r50_teacher_ckpt(tmp_path_factory):
    return _save_teacher_at_init(
        TEACHER_R50, tmp_path_factory.mktemp('ld_t') / 'r50.pth')


def _build(path, teacher_ckpt=None):
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(path))
    model_cfg = cfg.model
    student = model_cfg.student if model_cfg.type == 'FGDDistiller' \
        else model_cfg
    student.backbone.init_cfg = None  # nothing is downloaded
    if model_cfg.type == 'FGDDistiller':
        model_cfg.teacher_ckpt = teacher_ckpt
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize('name', sorted(PAPER_CONFIGS))
def test_paper_configs_build_and_give_their_losses(name, r50_teacher_ckpt):
    k, distilled = PAPER_CONFIGS[name]
    cfg, model = _build(LD / name, r50_teacher_ckpt)
    assert cfg.train_dataloader.batch_size == 10
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=1e-4,
                                               weight_decay=5e-4)
    student = model.student if distilled else model
    assert type(student).__name__ == 'WSODDetector'
    assert type(student.backbone).__name__ == 'SSDVGG'
    assert type(student.neck).__name__ == 'SSDNeck'
    assert student.feat_levels == (1, )
    assert student.roi_head.num_refine_stages == k
    assert cfg.train_dataloader.dataset.box_fraction == 0.0
    expected = {'loss_mil'} | {f'loss_ref{i + 1}' for i in range(k)}
    if distilled:
        assert model.fg_boxes == 'gt_or_teacher'
        assert model.pair_names == [f'ssd{i}' for i in range(5)]
        assert type(model.teacher).__name__ == 'RetinaNet'
        assert [h['type'] for h in cfg.custom_hooks] == ['FGDDistillHook']
        expected |= {f'loss_fgd_ssd{i}' for i in range(5)}
        expected |= {'fgd_teacher_boxes'}
    model.train()
    with torch.no_grad():  # the 5 levels of student and teacher match
        data = model.data_preprocessor(_batch(), True)
        losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())


def test_cpu_config_builds_and_trains_a_few_iterations(cpu_teacher_ckpt):
    cfg = Config.fromfile(str(LD_CPU))
    assert cfg.model.fg_boxes == 'gt_or_teacher'
    assert cfg.model.teacher_score_thr == 0.3
    model = _cpu_model(cpu_teacher_ckpt, teacher_max_boxes=20)
    assert model.student.feat_levels == (1, )
    assert isinstance(model.distill_losses['c3'].align, torch.nn.Conv2d)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    model.train()
    data = _batch()
    for _ in range(3):
        log = model.train_step(data, optim)
        assert {'loss_mil', 'loss_ref1', 'loss_ref2', 'loss_ref3',
                'loss_fgd_c3', 'loss_fgd_c4', 'fgd_teacher_boxes'} <= set(log)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
        assert log['loss_fgd_c3'] > 0 and log['fgd_teacher_boxes'] == 20
    for key, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[key]), key
    changed = [key for key, v in model.student.state_dict().items()
               if v.dtype.is_floating_point
               and not torch.equal(v, student_before[key])]
    assert any(key.startswith('roi_head.') for key in changed)
    assert any(key.startswith('backbone.') for key in changed)


# One epoch of 2 iterations; the teacher (at initialisation) keeps every
# detection so that its masks, its COCO metrics and the student's exist.
EXTRA = """
model = dict(teacher_ckpt={ckpt!r}, teacher_cfg={teacher!r},
             teacher_score_thr=0.0, teacher_max_boxes=20,
             student=dict(test_cfg=dict(score_thr=0.0)))
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def train_run(tiny_mosaic, cpu_teacher_ckpt, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ld_run')
    props = tmp / 'proposals'
    run_tool([sys.executable, ROOT / 'tools' / 'dataset_converters' /
              'generate_proposals.py', '--data-root', tiny_mosaic,
              '--out-dir', props, '--max-per-img', '100',
              '--splits', 'train', 'val'])
    root = str(tiny_mosaic).rstrip('/') + '/'
    teacher = dict(_cpu_teacher_scoring_all(), _delete_=True)
    cfg = tmp / 'ld.py'
    cfg.write_text(f"""
_base_ = [{str(LD_CPU)!r}]
data_root = {root!r}
_loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    _loader, batch_size=4,
    dataset=dict(data_root=data_root,
                 proposal_file={str(props / 'train.pkl')!r}))
val_dataloader = dict(
    _loader, dataset=dict(data_root=data_root,
                          proposal_file={str(props / 'val.pkl')!r}))
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json',
         metric='bbox'),
    dict(type='CorLocMetric', iou_thr=0.5)]
""" + EXTRA.format(ckpt=cpu_teacher_ckpt, teacher=teacher))
    work = tmp / 'work'
    proc = run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
                     '--work-dir', work])
    return work, proc.stdout + proc.stderr


def test_train_tool_logs_all_losses_and_saves_student_only(train_run):
    work, out = train_run
    path = next(work.glob('*/vis_data/scalars.json'))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    train = [r for r in rows if 'loss_mil' in r]
    assert len(train) == 2  # 8 images, batch 4
    keys = ['loss_mil', 'loss_ref1', 'loss_ref2', 'loss_ref3', 'loss_fgd_c3',
            'loss_fgd_c4']
    for r in train:
        assert all(k in r and abs(r[k]) < 1e6 for k in keys), r  # finite
        assert r['fgd_teacher_boxes'] == 20  # no training image has boxes
    # the hook evaluated the teacher; the val loop the student (+ CorLoc)
    assert 'FGD teacher on the val set' in out
    assert any('teacher/coco/bbox_mAP' in r for r in rows)
    assert any('corloc/mean' in r and 'teacher/corloc/mean' not in r
               for r in rows)

    full = torch.load(work / 'epoch_1.pth', weights_only=True)
    assert not any(k.startswith('teacher.') for k in full['state_dict'])
    student = torch.load(work / 'student_epoch_1.pth', weights_only=True)
    init_default_scope('mmdet')
    plain = MODELS.build(Config.fromfile(str(OICR_CPU)).model)
    plain.load_state_dict(student['state_dict'], strict=True)
    for k, v in student['state_dict'].items():
        assert torch.equal(v, full['state_dict']['student.' + k])
