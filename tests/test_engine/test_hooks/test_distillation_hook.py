"""DistillationHook: schedule, teacher validation, student-only checkpoints, in
a real 2-process gloo run of tools/dist_train.sh on real-crop mosaics; the
student checkpoint gives tools/test.py the distiller's exact predictions."""
import json
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import load

from cervdet.engine.hooks import distill_schedule_weight, student_checkpoint
from conftest import ROOT, free_port, run_tool, write_config

FGD_CPU = ROOT / 'configs' / 'fgd' / \
    'fgd_retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
STUDENT_CPU = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'
TEACHER_CPU = ROOT / 'configs' / 'fgd' / 'teachers' / \
    'retinanet_r18_fpn-128_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'


def test_schedule_weight_warmup_and_stop():
    w = [distill_schedule_weight(i, 0, warmup_iters=4) for i in range(6)]
    assert w == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert distill_schedule_weight(10, 3, stop_epoch=3) == 0.0
    assert distill_schedule_weight(10, 2, stop_epoch=3) == 1.0
    assert distill_schedule_weight(99, 0, stop_iter=100) == 1.0
    assert distill_schedule_weight(100, 0, stop_iter=100) == 0.0
    assert distill_schedule_weight(0, 0) == 1.0


def test_student_checkpoint_strips_prefix_and_distiller_parts():
    w = torch.ones(2)
    ckpt = dict(meta=dict(epoch=3, iter=30, cfg='...', dataset_meta=dict(
        classes=('a', ))), state_dict={
            'student.neck.w': w, 'teacher.neck.w': w,
            'distill_losses.p3.align.weight': w},
        optimizer=dict(), message_hub=dict())
    out = student_checkpoint(ckpt)
    assert set(out) == {'meta', 'state_dict'}
    assert list(out['state_dict']) == ['neck.w']
    assert out['meta']['epoch'] == 3 and 'cfg' not in out['meta']
    assert out['meta']['dataset_meta']['classes'] == ('a', )
    with pytest.raises(KeyError, match='FGDDistiller'):
        student_checkpoint(dict(meta={}, state_dict={'neck.w': w}))


def test_hook_rejects_plain_detector():
    from unittest.mock import MagicMock

    from cervdet.engine.hooks import FGDDistillHook
    runner = MagicMock()
    runner.model = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError, match='FGDDistiller'):
        FGDDistillHook().before_train(runner)
    with pytest.raises(ValueError, match='warmup_iters'):
        FGDDistillHook(warmup_iters=-1)


def test_drop_teacher_false_saves_the_teacher():
    """The teacher is out of the model's state dict; drop_teacher=False
    (the hook's option) still writes it into training checkpoints."""
    from unittest.mock import MagicMock

    from cervdet.engine.hooks import DistillationHook
    from cervdet.models.utils import FrozenTeacherMixin

    class Distiller(FrozenTeacherMixin, torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.student = torch.nn.Linear(2, 2)
            self.add_teacher('teacher', torch.nn.Linear(2, 2))
            self.distill_weight, self.distill_enabled = 1.0, True

    model = Distiller()
    runner = MagicMock(model=model)
    kept = dict(meta={}, state_dict=model.state_dict())
    assert set(kept['state_dict']) == {'student.weight', 'student.bias'}
    DistillationHook(save_student=False, drop_teacher=False) \
        .before_save_checkpoint(runner, kept)
    assert torch.equal(kept['state_dict']['teacher.weight'],
                       model.teacher.weight)
    dropped = dict(meta={}, state_dict=model.state_dict())
    DistillationHook(save_student=False).before_save_checkpoint(
        runner, dropped)
    assert set(dropped['state_dict']) == {'student.weight', 'student.bias'}
    assert 'fgd_teacher' in dropped['meta']


# Untrained models score below the 0.05 threshold: keep every box so that
# COCO metrics exist for the teacher and the student.
EXTRA = """
model = dict(teacher_ckpt={ckpt!r}, teacher_cfg={teacher!r},
             student=dict(test_cfg=dict(score_thr=0.0)))
train_cfg = dict(max_epochs=2, val_interval=2)
custom_hooks = [dict(type='DistillationHook', warmup_iters=2, stop_epoch=1,
                     max_keep_student_ckpts=1)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=3))
log_processor = dict(window_size=1)
"""
SCORE_ALL = 'test_cfg.score_thr=0.0'  # keep every box: compare them all


@pytest.fixture(scope='module')
def fgd_run(tiny_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fgd')
    # The mechanics need a teacher with the right architecture, not a good
    # one: save the CPU teacher at its initialisation.
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(0)
    teacher_cfg = Config.fromfile(str(TEACHER_CPU)).model
    teacher_cfg.test_cfg.score_thr = 0.0
    teacher = MODELS.build(teacher_cfg)
    teacher.init_weights()
    ckpt = tmp / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), ckpt)

    cfg = write_config(tmp / 'fgd.py', tiny_mosaic, base=FGD_CPU,
                       extra=EXTRA.format(ckpt=str(ckpt), teacher=dict(
                           teacher_cfg.to_dict(), _delete_=True)))
    work = tmp / 'work'
    proc = run_tool(
        ['bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work],
        env=dict(PORT=str(free_port())))
    return tmp, cfg, work, proc.stdout + proc.stderr


def _scalars(work):
    path = next(work.glob('*/vis_data/scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_distillation_logs_levels_schedule_and_teacher(fgd_run):
    _, _, work, out = fgd_run
    assert 'Distributed training: True' in out
    rows = _scalars(work)
    train = [r for r in rows if 'loss_distill_fpn0' in r]
    # 8 images, batch 2 per process, 2 processes: 2 iterations per epoch
    assert [r['iter'] for r in train] == [1, 2, 3, 4]
    for r in train:
        assert all(f'loss_distill_fpn{i}' in r for i in range(5))
    assert [r['distill_weight'] for r in train] == [0.5, 1.0, 0.0, 0.0]
    assert all(r['loss_distill_fpn0'] > 0 for r in train[:2])
    assert all(r['loss_distill_fpn0'] == 0 for r in train[2:])  # stopped
    assert 'Distillation stops at epoch 2' in out
    # the teacher was evaluated once, the student at the end (val_interval)
    assert 'Distillation teacher on the val set' in out
    assert any('teacher/coco/bbox_mAP' in r for r in rows)
    assert any('coco/bbox_mAP' in r and 'teacher/coco/bbox_mAP' not in r
               for r in rows)


def test_checkpoints_student_only_and_teacher_dropped(fgd_run):
    _, _, work, _ = fgd_run
    full = torch.load(work / 'epoch_2.pth', weights_only=True)
    keys = full['state_dict'].keys()
    assert not any(k.startswith('teacher.') for k in keys)
    assert any(k.startswith('distill_losses.') for k in keys)
    assert 'optimizer' in full and 'fgd_teacher' in full['meta']
    student = torch.load(work / 'student_epoch_2.pth', weights_only=True)
    assert set(student) == {'meta', 'state_dict'}
    assert student['meta']['epoch'] == 2
    for k, v in student['state_dict'].items():
        assert torch.equal(v, full['state_dict']['student.' + k])
    assert not (work / 'student_epoch_1.pth').exists()  # max_keep 1
    assert (work / 'last_student_checkpoint').read_text().endswith(
        'student_epoch_2.pth')


def test_student_checkpoint_in_plain_config_predicts_identically(
        fgd_run, tiny_mosaic):
    tmp, cfg, work, _ = fgd_run
    plain = write_config(tmp / 'plain.py', tiny_mosaic, base=STUDENT_CPU)
    run_tool([sys.executable, ROOT / 'tools' / 'test.py', plain,
              work / 'student_epoch_2.pth', '--work-dir', tmp / 't_plain',
              '--out', tmp / 'plain.pkl', '--cfg-options',
              'model.' + SCORE_ALL])
    run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg,
              work / 'epoch_2.pth', '--work-dir', tmp / 't_fgd', '--out',
              tmp / 'fgd.pkl'])  # score_thr=0 is in the config
    a, b = load(tmp / 'plain.pkl'), load(tmp / 'fgd.pkl')
    assert len(a) == len(b) == 4
    n = 0
    for x, y in zip(a, b):
        assert x['img_id'] == y['img_id']
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(x['pred_instances'][key],
                               y['pred_instances'][key]), key
        n += len(x['pred_instances']['scores'])
    assert n > 0


def test_resume_from_checkpoint_without_teacher(fgd_run):
    _, cfg, work, _ = fgd_run
    proc = run_tool([
        'bash', ROOT / 'tools' / 'dist_train.sh', cfg, 2, '--work-dir', work,
        '--resume', '--cfg-options', 'train_cfg.max_epochs=3'
    ], env=dict(PORT=str(free_port())))
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 2, iter: 4' in out
    assert 'missing keys' not in out.lower()
    assert (work / 'student_epoch_3.pth').exists()
