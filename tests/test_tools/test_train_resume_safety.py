"""tools/train.py never loses a checkpoint: resume takes the
newest complete checkpoint of the work dir itself (none: it stops), a
truncated file is set aside, moved and copied work dirs resume from their
own files, and two trainings cannot share a work dir."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, run_tool, write_config

EXTRA = """
train_cfg = dict(max_epochs=2, val_interval=100)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5))
"""
#: 4 training images, batch 2: 2 iterations per epoch.
SMALL = ['train_dataloader.dataset.indices=4']


def _train(cfg, work, *args, check=True, epochs=None):
    opts = list(SMALL)
    if epochs is not None:
        opts.append(f'train_cfg.max_epochs={epochs}')
    return run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
                     '--work-dir', work, *args, '--cfg-options', *opts],
                    check=check)


def _digests(work):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(work.glob('*.pth*'))}


def _meta(path):
    m = torch.load(path, weights_only=True, map_location='cpu')['meta']
    return m['epoch'], m['iter']


@pytest.fixture(scope='module')
def trained(tiny_mosaic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('resume')
    cfg = write_config(tmp / 'cfg.py', tiny_mosaic, extra=EXTRA)
    work = tmp / 'work'
    proc = _train(cfg, work)
    return cfg, work, proc


def _copy(work, dst):
    shutil.copytree(work, dst)
    return dst


def test_first_run_logs_device_and_writes_complete_files(trained):
    cfg, work, proc = trained
    out = proc.stdout + proc.stderr
    assert 'Device: cpu' in out and 'GPU number' not in out
    assert _meta(work / 'epoch_2.pth') == (2, 4)
    assert not list(work.glob('.*tmp*')), 'temporary checkpoint left over'
    assert not (work / '.train.lock').exists(), 'lock not released'


def test_resume_without_last_checkpoint(trained, tmp_path):
    cfg, work, _ = trained
    w = _copy(work, tmp_path / 'w')
    (w / 'last_checkpoint').unlink()
    before = _digests(w)
    proc = _train(cfg, w, '--resume', epochs=3)
    out = proc.stdout + proc.stderr
    assert f'continuing from {w / "epoch_2.pth"}' in out
    assert 'resumed epoch: 2, iter: 4' in out
    after = _digests(w)
    for name in before:  # nothing deleted or overwritten
        assert after[name] == before[name], name
    assert _meta(w / 'epoch_3.pth') == (3, 6)


def test_resume_after_kill_during_save(trained, tmp_path):
    """A save killed midway (truncated epoch_2.pth, last_checkpoint still
    naming epoch_1): resume continues from epoch_1 and keeps the broken file
    aside instead of saving over it."""
    cfg, work, _ = trained
    w = _copy(work, tmp_path / 'w')
    data = (w / 'epoch_2.pth').read_bytes()
    (w / 'epoch_2.pth').write_bytes(data[:len(data) // 3])
    (w / 'last_checkpoint').write_text(str(w / 'epoch_1.pth'))
    proc = _train(cfg, w, '--resume')
    out = proc.stdout + proc.stderr
    assert f'skipped {w / "epoch_2.pth"}: truncated' in out
    assert 'resumed epoch: 1, iter: 2' in out
    assert (w / 'epoch_2.pth.incomplete').read_bytes() == \
        data[:len(data) // 3]
    assert _meta(w / 'epoch_2.pth') == (2, 4)  # saved again, complete


def test_moved_work_dir_resumes_from_its_files(trained, tmp_path):
    cfg, work, _ = trained
    a = _copy(work, tmp_path / 'a')
    (a / 'last_checkpoint').write_text(str(a / 'epoch_2.pth'))
    b = tmp_path / 'b'
    os.rename(a, b)  # last_checkpoint now names a file that is gone
    proc = _train(cfg, b, '--resume', epochs=3)
    out = proc.stdout + proc.stderr
    assert f'continuing from {b / "epoch_2.pth"}' in out
    assert _meta(b / 'epoch_3.pth') == (3, 6)


def test_copied_work_dir_does_not_use_the_original(trained, tmp_path):
    cfg, work, _ = trained
    original = _digests(work)
    c = _copy(work, tmp_path / 'c')
    (c / 'epoch_2.pth').unlink()  # the copy's newest is epoch_1
    assert str(work) in (c / 'last_checkpoint').read_text()
    proc = _train(cfg, c, '--resume')
    out = proc.stdout + proc.stderr
    assert f'continuing from {c / "epoch_1.pth"}' in out
    assert 'resumed epoch: 1, iter: 2' in out
    assert _digests(work) == original


def test_resume_without_usable_checkpoint_stops(trained, tmp_path):
    cfg, work, _ = trained
    w = tmp_path / 'w'
    w.mkdir()
    data = (work / 'epoch_1.pth').read_bytes()
    (w / 'epoch_1.pth').write_bytes(data[:1000])
    proc = _train(cfg, w, '--resume', check=False)
    assert proc.returncode != 0
    assert 'no usable checkpoint' in proc.stderr
    assert 'epoch_1.pth (truncated' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert (w / 'epoch_1.pth').read_bytes() == data[:1000]
    assert sorted(p.name for p in w.glob('*.pth*')) == ['epoch_1.pth']


def test_two_trainings_in_one_work_dir(trained, tmp_path):
    """A second training into a busy work dir is refused; after the first
    dies (killed: its lock stays), a resumed run takes the stale lock over
    with a note."""
    cfg, _, _ = trained
    w = tmp_path / 'w'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    first = subprocess.Popen(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(cfg),
         '--work-dir', str(w), '--cfg-options', *SMALL,
         'train_cfg.max_epochs=1000'],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (w / 'epoch_1.pth').exists():
            assert first.poll() is None, 'the first training failed'
            assert time.time() < deadline
            time.sleep(0.2)
        owner = json.loads((w / '.train.lock').read_text())
        assert owner['pid'] == first.pid
        second = _train(cfg, w, '--resume', check=False)
        assert first.poll() is None
        assert second.returncode != 0
        assert 'in use by another training' in second.stderr
        assert f'pid {first.pid}' in second.stderr
    finally:
        first.kill()
        first.wait()
    assert (w / '.train.lock').exists()  # a killed run cannot clean up
    last = max(int(p.stem.split('_')[1]) for p in w.glob('epoch_*.pth'))
    third = _train(cfg, w, '--resume', epochs=last + 1)
    out = third.stdout + third.stderr
    assert f'taking over the lock of pid {first.pid}' in out
    assert f'resumed epoch: {last}' in out
    assert _meta(w / f'epoch_{last + 1}.pth')[0] == last + 1
    assert not (w / '.train.lock').exists()
