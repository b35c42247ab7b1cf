"""A Runner that trains with the same scripts on GPUs (nccl) and CPUs (gloo),
and never loses or overwrites what a user saved."""
import copy
import os
import os.path as osp
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Union

import torch.nn as nn
from mmengine.device import get_device
from mmengine.dist import (
    broadcast_object_list,
    get_dist_info,
    is_distributed,
    master_only,
)
from mmengine.hooks import Hook
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner
from mmengine.utils.dl_utils import collect_env
from torch.nn.parallel import DistributedDataParallel

from cervdet.utils.checkpoint_files import (
    ResumeError,
    check_checkpoint_fits,
    checkpoint_problem,
    find_resume_checkpoint,
    set_aside,
)
from cervdet.utils.dist import init_dist_device_agnostic
from cervdet.utils.work_dir_lock import WorkDirLock, WorkDirLockedError

#: Hooks every CervdetRunner registers (unless the config has them).
SAFETY_HOOKS = ('NonFiniteLossHook', 'CheckImagesHook')


@RUNNERS.register_module()
class CervdetRunner(Runner):
    """:class:`mmengine.runner.Runner` with device-agnostic distribution and
    safe work dirs.

    Distribution, only when ``launcher='pytorch'``:

    - the process group is initialised by
      :func:`cervdet.utils.init_dist_device_agnostic` (no
      ``torch.cuda.set_device`` on CPU machines; ``nccl`` falls back to
      ``gloo`` where no GPU is visible);
    - on CPU the model is wrapped in DDP without ``device_ids`` (CPU modules
      take none; MMEngine passes ``[LOCAL_RANK]``).

    Work dir safety (see ``docs/reliability.md``):

    - **checkpoints are written atomically** (a temporary file renamed over
      the target): a run killed during a save leaves the previous files
      intact;
    - **resume** (``resume=True`` without ``load_from``) takes the newest
      *complete* ``epoch_*/iter_*.pth`` of the work dir itself (not the
      absolute path in ``last_checkpoint``, so moved and copied work dirs
      resume from their own files); an incomplete newer file is reported
      and renamed ``*.incomplete`` (the run will save under its name); no
      usable checkpoint raises :class:`ResumeError` instead of training
      from scratch over the old files;
    - **one training per work dir**: ``train()`` holds
      ``<work_dir>/.train.lock`` (pid and host); a second run raises
      :class:`WorkDirLockedError`, a stale lock is taken over with a note;
    - each run logs into its own ``<work_dir>/<timestamp>/`` (a run started
      in the same second gets the next free one);
    - the config copy ``<work_dir>/<config>.py`` is written only when absent
      or identical; otherwise (a resumed run with other options, a test) it
      goes to the run's log dir. ``dump_config_in_log_dir=True`` in the
      config always puts it there (``tools/test.py``);
    - ``test()`` and ``val()`` load ``load_from`` strictly: a checkpoint of
      another architecture raises :class:`CheckpointMismatchError` naming
      missing/unexpected keys and shapes (MMDetection's ``tools/test.py``
      would test random weights). ``strict_load`` in the config overrides
      it (``True``: also for fine-tuning in ``train()``; ``False``: never);
    - :class:`~cervdet.engine.hooks.NonFiniteLossHook` and
      :class:`~cervdet.engine.hooks.CheckImagesHook` are registered.

    On GPUs everything runs as with the parent class. Select it with
    ``runner_type = 'CervdetRunner'`` (set in ``configs/_base_/default_runtime.py``);
    MMDetection's own ``tools/train.py`` honours ``runner_type`` too.
    """

    def setup_env(self, env_cfg: Dict) -> None:
        if self.distributed and not is_distributed() \
                and self.launcher == 'pytorch':
            dist_cfg = dict(env_cfg.get('dist_cfg', {}))
            init_dist_device_agnostic(**dist_cfg)
        super().setup_env(env_cfg)
        self._timestamp = self._unique_timestamp(self._timestamp)

    def _unique_timestamp(self, timestamp: str) -> str:
        """``timestamp``, or the next second whose log dir is free (rank 0
        creates it atomically; all ranks use its choice)."""
        rank, world = get_dist_info()
        obj = [timestamp]
        if rank == 0:
            t = time.mktime(time.strptime(timestamp, '%Y%m%d_%H%M%S'))
            os.makedirs(self._work_dir, exist_ok=True)
            for _ in range(3600):
                try:
                    os.mkdir(osp.join(self._work_dir, obj[0]))
                    break
                except FileExistsError:
                    t += 1
                    obj[0] = time.strftime('%Y%m%d_%H%M%S',
                                           time.localtime(t))
        if world > 1:
            broadcast_object_list(obj, src=0)
        return obj[0]

    def wrap_model(self, model_wrapper_cfg: Optional[Dict],
                   model: nn.Module) -> nn.Module:
        if self.distributed and get_device() == 'cpu':
            if model_wrapper_cfg is None:
                model_wrapper_cfg = dict(
                    type='MMDistributedDataParallel',
                    broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get(
                        'find_unused_parameters', False))
            model_wrapper_cfg = copy.deepcopy(model_wrapper_cfg)
            wrapper = MODEL_WRAPPERS.get(
                model_wrapper_cfg.get('type', 'MMDistributedDataParallel'))
            if isinstance(wrapper, type) and issubclass(
                    wrapper, DistributedDataParallel):
                # Explicit None wins over the parent's [LOCAL_RANK] default.
                model_wrapper_cfg['device_ids'] = None
        return super().wrap_model(model_wrapper_cfg, model)

    # ------------------------------------------------------------------
    # hooks
    def register_hooks(
            self,
            default_hooks: Optional[Dict[str, Union[Hook, Dict]]] = None,
            custom_hooks: Optional[List[Union[Hook, Dict]]] = None) -> None:
        from cervdet.engine import hooks as cervdet_hooks
        custom_hooks = list(custom_hooks or [])
        present = {str(h.get('type')).split('.')[-1] if isinstance(h, dict)
                   else type(h).__name__ for h in custom_hooks}
        for name in SAFETY_HOOKS:
            if name not in present:
                # instances: the hooks live in the mmdet registry, and
                # mmpretrain-scope configs use this runner too
                custom_hooks.append(getattr(cervdet_hooks, name)())
        super().register_hooks(default_hooks, custom_hooks)

    # ------------------------------------------------------------------
    # environment log
    def _log_env(self, env_cfg: dict) -> None:
        """As the parent, but names the device and the number of processes
        (the parent reports the world size as "GPU number", also on CPU)."""
        env = collect_env()
        runtime_env = OrderedDict()
        runtime_env.update(env_cfg)
        runtime_env.update(self._randomness_cfg)
        runtime_env['seed'] = self._seed
        runtime_env['Distributed launcher'] = self._launcher
        runtime_env['Distributed training'] = self._distributed
        device = get_device()
        runtime_env['Device'] = device
        runtime_env['world_size'] = self._world_size  # processes
        if device != 'cpu':
            runtime_env['GPU number'] = self._world_size
        env_info = '\n    ' + '\n    '.join(f'{k}: {v}'
                                            for k, v in env.items())
        runtime_info = '\n    ' + '\n    '.join(
            f'{k}: {v}' for k, v in runtime_env.items())
        dash = '-' * 60
        self.logger.info(f'\n{dash}\nSystem environment:{env_info}\n\n'
                         f'Runtime environment:{runtime_info}\n{dash}\n')
        if self.cfg._cfg_dict:
            self.logger.info(f'Config:\n{self.cfg.pretty_text}')

    # ------------------------------------------------------------------
    # config copy
    @master_only
    def dump_config(self) -> None:
        """Write the config copy without replacing another run's copy."""
        if self.cfg.filename is not None:
            filename = osp.basename(self.cfg.filename)
        else:
            filename = f'{self.timestamp}.py'
        text = self.cfg.pretty_text
        target = osp.join(self.work_dir, filename)
        if self.cfg.get('dump_config_in_log_dir', False):
            target = osp.join(self.log_dir, filename)
        elif osp.exists(target):
            with open(target) as f:
                same = f.read() == text
            if same:
                return
            target = osp.join(self.log_dir, filename)
            self.logger.info(
                f'{osp.join(self.work_dir, filename)} holds another config '
                f'(an earlier run\'s): kept; this run\'s config is {target}')
        os.makedirs(osp.dirname(target), exist_ok=True)
        tmp = f'{target}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, target)

    # ------------------------------------------------------------------
    # checkpoints
    @master_only
    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None):
        """As the parent, but local files are written to
        ``.<filename>.tmp<pid>`` first, flushed to disk and renamed over
        ``filename``: a save killed midway leaves the old files intact."""
        local = file_client_args is None and backend_args is None and \
            '://' not in str(out_dir)
        if not local:
            return super().save_checkpoint(
                out_dir, filename, file_client_args, save_optimizer,
                save_param_scheduler, meta, by_epoch, backend_args)
        tmp_name = f'.{filename}.tmp{os.getpid()}'
        tmp = osp.join(out_dir, tmp_name)
        try:
            super().save_checkpoint(out_dir, tmp_name, None, save_optimizer,
                                    save_param_scheduler, meta, by_epoch,
                                    None)
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
            os.replace(tmp, osp.join(out_dir, filename))
        finally:
            if osp.exists(tmp):
                os.unlink(tmp)

    def _checkpoint_kind(self) -> Optional[str]:
        loop = self._train_loop
        if loop is None or isinstance(loop, dict):
            return None
        return 'epoch' if 'Epoch' in type(loop).__name__ else 'iter'

    def _choose_resume_checkpoint(self) -> str:
        """The checkpoint ``resume=True`` continues from (see the class
        docstring); raises :class:`ResumeError` when there is none."""
        path, skipped = find_resume_checkpoint(self.work_dir,
                                               self._checkpoint_kind())
        for bad, reason in skipped:
            self.logger.warning(f'resume: skipped {bad}: {reason}')
        if path is None:
            found = ', '.join(f'{osp.basename(p)} ({r})' for p, r in skipped)
            raise ResumeError(
                f'--resume: no usable checkpoint in {self.work_dir} '
                f'({"only incomplete ones: " + found if found else "none"}). '
                'Nothing was trained or changed. Start without --resume for '
                'a new run (in another --work-dir), or pass --resume '
                'PATH/TO/CHECKPOINT.pth.')
        rank, _ = get_dist_info()
        if rank == 0:
            for bad, _ in skipped:
                if osp.exists(bad):
                    kept = set_aside(bad)
                    self.logger.warning(f'resume: {bad} renamed {kept} '
                                        '(this run saves under its name)')
        self.logger.info(f'Auto resume: continuing from {path} (the newest '
                         f'complete checkpoint in {self.work_dir})')
        return path

    def load_or_resume(self) -> None:
        if self._has_loaded:
            return None
        if self._resume:
            if self._load_from is None:
                self._load_from = self._choose_resume_checkpoint()
            else:
                problem = checkpoint_problem(str(self._load_from)) \
                    if osp.isfile(str(self._load_from)) else None
                if problem is not None:
                    raise ResumeError(f'--resume {self._load_from}: {problem}'
                                      '; choose a complete checkpoint')
            self.resume(self._load_from)
            self._has_loaded = True
            return None
        strict = self.cfg.get('strict_load', None)
        if strict is None:  # default: strict for test() / val() only
            strict = getattr(self, '_evaluating', False)
        if self._load_from is not None and strict:
            self.check_checkpoint_fits(self._load_from)
        return super().load_or_resume()

    @contextmanager
    def _evaluation(self) -> Iterator[None]:
        """Mark a ``test()`` / ``val()`` run: :meth:`load_or_resume` then
        loads ``load_from`` strictly unless the config sets
        ``strict_load=False``."""
        self._evaluating = True
        try:
            yield
        finally:
            self._evaluating = False

    def test(self) -> dict:
        """As the parent, in :meth:`_evaluation` (strict ``load_from``)."""
        with self._evaluation():
            return super().test()

    def val(self) -> dict:
        """As the parent, in :meth:`_evaluation` (strict ``load_from``)."""
        with self._evaluation():
            return super().val()

    def check_checkpoint_fits(self, filename: str) -> None:
        """Raise :class:`CheckpointMismatchError` unless ``filename`` fits
        the model exactly (see
        :func:`cervdet.utils.checkpoint_files.check_checkpoint_fits`)."""
        check_checkpoint_fits(self.model, filename,
                              self.cfg.filename or 'the config')

    # ------------------------------------------------------------------
    def train(self) -> nn.Module:
        """As the parent, holding ``<work_dir>/.train.lock`` (rank 0)."""
        rank, world = get_dist_info()
        lock, err = None, [None]
        if rank == 0:
            lock = WorkDirLock(self.work_dir, note=self.logger.warning)
            try:
                lock.acquire()
            except WorkDirLockedError as e:
                err = [str(e)]
        if world > 1:
            broadcast_object_list(err, src=0)
        if err[0] is not None:
            raise WorkDirLockedError(err[0])
        try:
            return super().train()
        finally:
            if lock is not None:
                lock.release()
