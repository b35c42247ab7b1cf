"""Helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import glob
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def load_config(config: str,
                launcher: str = 'none',
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Load a config as MMDetection's tools do.

    ``work_dir`` priority: argument > ``work_dir`` in the file >
    ``./work_dirs/<config name>``. Configs without ``runner_type`` get
    :class:`cervdet.engine.CervdetRunner`, so they run unchanged on CPUs.
    """
    import cervdet  # noqa: F401  (registers modules, safe checkpoint loading)

    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    cfg.setdefault('runner_type', 'CervdetRunner')
    return cfg


def _user_errors() -> tuple:
    from cervdet.datasets.cervical_coco import CocoAnnotationError
    from cervdet.datasets.image_checks import ImageHeaderError
    from cervdet.utils.checkpoint_files import CheckpointMismatchError, ResumeError
    from cervdet.utils.registry_hints import UnknownTypeError
    from cervdet.utils.work_dir_lock import WorkDirLockedError
    return (CocoAnnotationError, ImageHeaderError, CheckpointMismatchError,
            ResumeError, UnknownTypeError, WorkDirLockedError,
            FloatingPointError)


#: Errors of the user's input that the tools report as one message (exit
#: code 1) instead of a traceback.
USER_ERRORS = _user_errors()


def build_runner(cfg: Config) -> Runner:
    """Build the runner named by ``cfg.runner_type``."""
    return RUNNERS.build(cfg)


def amp_available() -> bool:
    """Whether MMEngine's ``AmpOptimWrapper`` can run on this machine."""
    from mmengine.device import (
        is_cuda_available,
        is_mlu_available,
        is_musa_available,
        is_npu_available,
    )
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def existing_checkpoints(work_dir: str) -> List[str]:
    """Checkpoints a previous run left in ``work_dir`` (sorted)."""
    return sorted(glob.glob(osp.join(work_dir, '*.pth')))


def local_rank_env(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local-rank``."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """Add the flags tools/train.py and tools/test.py share with MMDetection's
    tools: ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
