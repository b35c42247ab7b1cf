"""Which checkpoint a resume takes, how an incomplete file is recognised,
and how a checkpoint of another model is described."""
import os

import pytest
import torch

from cervdet.utils.checkpoint_files import (
    CheckpointMismatchError,
    check_checkpoint_fits,
    checkpoint_problem,
    find_resume_checkpoint,
    numbered_checkpoints,
    set_aside,
    state_dict_mismatch,
)


def _save(path, value=0.):
    torch.save(dict(state_dict=dict(w=torch.full((4, 3), value)),
                    meta=dict(epoch=int(value))), path)
    return path


def test_truncated_and_empty_files_are_incomplete(tmp_path):
    good = _save(tmp_path / 'epoch_1.pth', 1.)
    assert checkpoint_problem(str(good)) is None
    data = good.read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    assert 'truncated' in checkpoint_problem(str(cut))
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_problem(str(tmp_path / 'empty.pth')) == 'empty file'
    # one flipped byte inside a member: the CRC check finds it
    bad = bytearray(data)
    i = data.index(b'\x00\x00\x80?')  # float 1.0 of the tensor
    bad[i + 3] ^= 0x10
    (tmp_path / 'flip.pth').write_bytes(bytes(bad))
    assert 'CRC' in checkpoint_problem(str(tmp_path / 'flip.pth'))
    assert checkpoint_problem(str(tmp_path / 'none.pth')) == 'no such file'


def test_newest_complete_checkpoint_of_the_dir_itself(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    for e in (1, 2, 10):
        _save(work / f'epoch_{e}.pth', e)
    _save(work / 'iter_500.pth', 500)
    # numeric, not lexical order (epoch_10 > epoch_2); the run's kind first
    names = [os.path.basename(p)
             for p in numbered_checkpoints(str(work), 'epoch')]
    assert names == ['epoch_10.pth', 'epoch_2.pth', 'epoch_1.pth',
                     'iter_500.pth']
    # last_checkpoint of another (original) dir is not followed
    other = tmp_path / 'original'
    other.mkdir()
    _save(other / 'epoch_11.pth', 11)
    (work / 'last_checkpoint').write_text(str(other / 'epoch_11.pth'))
    path, skipped = find_resume_checkpoint(str(work), 'epoch')
    assert path == str(work / 'epoch_10.pth') and skipped == []
    # a truncated newest file is skipped with its reason
    data = (work / 'epoch_10.pth').read_bytes()
    (work / 'epoch_10.pth').write_bytes(data[:100])
    path, skipped = find_resume_checkpoint(str(work), 'epoch')
    assert path == str(work / 'epoch_2.pth')
    assert skipped[0][0] == str(work / 'epoch_10.pth')
    assert 'truncated' in skipped[0][1]
    kept = set_aside(skipped[0][0])
    assert kept.endswith('epoch_10.pth.incomplete')
    assert open(kept, 'rb').read() == data[:100]
    # a custom file name in last_checkpoint is looked up in the dir itself
    custom = tmp_path / 'custom'
    custom.mkdir()
    _save(custom / 'model_final.pth')
    (custom / 'last_checkpoint').write_text('/elsewhere/model_final.pth')
    assert find_resume_checkpoint(str(custom))[0] == str(
        custom / 'model_final.pth')
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert find_resume_checkpoint(str(empty)) == (None, [])


def test_mismatch_names_keys_and_shapes():
    model = dict(a=torch.zeros(2, 3), b=torch.zeros(5), c=torch.zeros(1))
    ckpt = dict(a=torch.zeros(2, 3), b=torch.zeros(11), d=torch.zeros(1))
    msg = state_dict_mismatch(model, ckpt)
    assert '1 keys of the model missing in the checkpoint: c' in msg
    assert '1 unexpected keys in the checkpoint: d' in msg
    assert 'b [11] vs [5]' in msg
    assert state_dict_mismatch(model, dict(model)) is None


def _detector(**over):
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from conftest import CPU_CONFIG
    cfg = Config.fromfile(str(CPU_CONFIG)).model
    for k, v in over.items():
        node = cfg
        *parents, leaf = k.split('.')
        for p in parents:
            node = node[p]
        node[leaf] = v
    return MODELS.build(cfg)


def test_other_detector_and_classes_refused(tmp_path):
    retina = _detector()
    torch.save(dict(state_dict=retina.state_dict()), tmp_path / 'r.pth')
    check_checkpoint_fits(retina, str(tmp_path / 'r.pth'))  # fits
    eleven = _detector(**{'bbox_head.num_classes': 11})
    torch.save(dict(state_dict=eleven.state_dict()), tmp_path / 'r11.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r'bbox_head\.retina_cls\.weight \[99, 64, 3, 3\]'
                       r' vs \[45, 64, 3, 3\]'):
        check_checkpoint_fits(retina, str(tmp_path / 'r11.pth'))
    # a two-stage detector: its roi_head / rpn_head keys are unexpected
    import mmdet
    from mmdet.registry import MODELS
    from mmengine.config import Config
    mim = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs')
    frcnn_cfg = Config.fromfile(os.path.join(
        mim, 'faster_rcnn', 'faster-rcnn_r50_fpn_1x_coco.py')).model
    frcnn_cfg.backbone.update(depth=18, init_cfg=None)
    frcnn_cfg.neck.in_channels = [64, 128, 256, 512]
    frcnn = MODELS.build(frcnn_cfg)
    torch.save(dict(state_dict=frcnn.state_dict()), tmp_path / 'f.pth')
    with pytest.raises(CheckpointMismatchError) as e:
        check_checkpoint_fits(retina, str(tmp_path / 'f.pth'))
    msg = str(e.value)
    assert 'unexpected keys in the checkpoint' in msg and 'rpn_head' in msg
    assert 'missing in the checkpoint' in msg and 'bbox_head.cls_convs' in msg
    assert 'rpn_head.* 6' in msg and 'roi_head.* ' in msg  # grouped counts
    assert 'backbone.conv1.weight [64, 3, 7, 7] vs [32, 3, 7, 7]' in msg


def test_model_load_hooks_are_honoured():
    """A model that refills a frozen sub-network on load (as a distiller
    may do with its teacher) is not refused for a checkpoint without it."""
    from cervdet.utils.checkpoint_files import load_mismatch

    class Distiller(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.student = torch.nn.Linear(2, 2)
            self.teacher = torch.nn.Linear(2, 2)
            self._register_load_state_dict_pre_hook(self._fill)

        def _fill(self, state_dict, prefix, *args):
            if not any(k.startswith(prefix + 'teacher.') for k in state_dict):
                for k, v in self.teacher.state_dict().items():
                    state_dict[prefix + 'teacher.' + k] = v

    m = Distiller()
    student_only = {k: torch.ones_like(v) for k, v in m.state_dict().items()
                    if k.startswith('student.')}
    assert state_dict_mismatch(m.state_dict(), student_only) is not None
    assert load_mismatch(m, student_only) is None
    assert torch.equal(m.student.weight, torch.ones(2, 2))
    msg = load_mismatch(m, dict(student_only, extra=torch.zeros(1)))
    assert msg == '1 unexpected keys in the checkpoint: extra'
