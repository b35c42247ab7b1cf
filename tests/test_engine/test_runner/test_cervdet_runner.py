"""CervdetRunner on MMEngine's toy parts: a save killed midway leaves the
previous checkpoint intact, a config copy of another run is kept, two runs
of one second get their own log dirs, train() refuses a busy work dir."""
import json
import os
import socket

import pytest
import torch
from mmengine.testing import RunnerTestCase

from cervdet.engine.runner import CervdetRunner
from cervdet.utils.work_dir_lock import LOCK_NAME, WorkDirLockedError


class TestCervdetRunner(RunnerTestCase):

    def _cfg(self, **over):
        cfg = self.epoch_based_cfg
        cfg.train_cfg.max_epochs = 1
        cfg.runner_type = 'CervdetRunner'
        cfg.update(over)
        return cfg

    def _runner(self, cfg):
        runner = CervdetRunner.from_cfg(cfg)
        self.assertIsInstance(runner, CervdetRunner)
        return runner

    def test_save_killed_midway_keeps_previous_file(self):
        runner = self._runner(self._cfg())
        runner.train()
        path = os.path.join(runner.work_dir, 'epoch_1.pth')
        before = open(path, 'rb').read()
        torch.load(path, weights_only=True)  # complete

        import mmengine.runner.runner as runner_module
        real = runner_module.save_checkpoint

        def killed(checkpoint, filename, **kwargs):
            with open(filename, 'wb') as f:
                f.write(before[:len(before) // 2])
            raise KeyboardInterrupt('killed during the save')

        runner_module.save_checkpoint = killed
        try:
            with pytest.raises(KeyboardInterrupt):
                runner.save_checkpoint(runner.work_dir, 'epoch_1.pth')
        finally:
            runner_module.save_checkpoint = real
        assert open(path, 'rb').read() == before
        assert not [n for n in os.listdir(runner.work_dir) if '.tmp' in n]
        # a normal save replaces it completely
        runner.save_checkpoint(runner.work_dir, 'epoch_1.pth')
        torch.load(path, weights_only=True)

    def test_runs_of_one_second_get_their_own_log_dirs(self):
        first = self._runner(self._cfg(experiment_name='a'))
        second = self._runner(self._cfg(experiment_name='b'))
        assert first.timestamp <= second.timestamp
        assert first.log_dir != second.log_dir
        assert os.path.isdir(first.log_dir) and os.path.isdir(second.log_dir)

    def test_dump_config_never_replaces_a_different_copy(self):
        from mmengine.config import Config
        cfg = self._cfg(experiment_name='c')
        src = os.path.join(self.temp_dir.name, 'src', 'my_cfg.py')
        os.makedirs(os.path.dirname(src))
        cfg.dump(src)
        cfg = Config.fromfile(src)
        copy = os.path.join(cfg.work_dir, 'my_cfg.py')
        os.makedirs(cfg.work_dir, exist_ok=True)
        with open(copy, 'w') as f:
            f.write('# an earlier run of this work dir\n')
        runner = self._runner(cfg)
        assert open(copy).read() == '# an earlier run of this work dir\n'
        assert os.path.isfile(os.path.join(runner.log_dir, 'my_cfg.py'))

    def test_train_refuses_a_busy_work_dir(self):
        runner = self._runner(self._cfg(experiment_name='d'))
        lock = os.path.join(runner.work_dir, LOCK_NAME)
        with open(lock, 'w') as f:  # a live process of this host
            json.dump(dict(pid=os.getppid(), host=socket.gethostname()), f)
        with pytest.raises(WorkDirLockedError, match='in use by another'):
            runner.train()
        assert not os.path.exists(os.path.join(runner.work_dir,
                                               'epoch_1.pth'))
        os.unlink(lock)
        runner.train()
        assert not os.path.exists(lock)
