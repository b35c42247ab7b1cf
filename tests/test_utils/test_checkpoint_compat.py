import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.testing import RunnerTestCase

import cervdet  # noqa: F401  (registers the safe globals)
from cervdet.utils import checkpoint_safe_globals


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_numpy_and_history_buffer_load_with_weights_only(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.25)
    obj = dict(
        meta=dict(
            epoch=np.int64(3),
            dtype=np.dtype('float32'),
            arr=np.arange(4, dtype=np.float32),
            hub=dict(log_scalars={'loss': buf})),
        state_dict={'w': torch.ones(2)})
    path = tmp_path / 'ckpt.pth'
    torch.save(obj, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['meta']['epoch'] == 3
    assert loaded['meta']['dtype'] == np.float32
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(4))
    restored = loaded['meta']['hub']['log_scalars']['loss']
    assert isinstance(restored, HistoryBuffer)
    assert restored.current() == pytest.approx(1.25)
    assert restored.mean() == pytest.approx(0.875)


def test_arbitrary_code_is_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'x': _Evil()}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert os.system not in checkpoint_safe_globals()


class TestRunnerCheckpoints(RunnerTestCase):
    """A real MMEngine runner saves, then loads and resumes, its checkpoint."""

    def test_save_load_resume(self):
        cfg = self.epoch_based_cfg
        cfg.train_cfg.max_epochs = 1
        runner = self.build_runner(cfg)
        runner.train()
        ckpt = os.path.join(runner.work_dir, 'epoch_1.pth')
        assert os.path.isfile(ckpt)
        # the message hub holds HistoryBuffers and numpy scalars
        loaded = torch.load(ckpt, weights_only=True)
        scalars = loaded['message_hub']['log_scalars']
        assert isinstance(scalars['train/loss'], HistoryBuffer)

        cfg2 = self.epoch_based_cfg
        cfg2.experiment_name = 'resume'
        cfg2.train_cfg.max_epochs = 2
        cfg2.load_from = ckpt
        cfg2.resume = True
        runner2 = self.build_runner(cfg2)
        runner2.train()
        assert (runner2.epoch, runner2.iter) == (2, 8)
        # the loss history of epoch 1 came back from the checkpoint
        history = runner2.message_hub.get_scalar('train/loss').data[0]
        assert len(history) == 8
        np.testing.assert_allclose(history[:4],
                                   scalars['train/loss'].data[0][:4])


def test_getattr_stand_in_refuses_other_attributes(tmp_path):
    import io

    class _GetattrEvil:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    buf = io.BytesIO()
    torch.save({'x': _GetattrEvil()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='only allows'):
        torch.load(buf, weights_only=True)


def test_history_buffer_loads_in_a_fresh_process(tmp_path):
    """Before any HistoryBuffer exists, its statistics table is empty."""
    import subprocess
    import sys
    buf = HistoryBuffer()
    buf.update(2.0)
    torch.save({'b': buf}, tmp_path / 'hb.pth')
    code = ('import torch, cervdet; '
            f'b = torch.load({str(tmp_path / "hb.pth")!r}, weights_only=True)'
            "['b']; print(b.mean())")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('2.0')
