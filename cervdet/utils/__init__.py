from .checkpoint_compat import checkpoint_safe_globals, register_checkpoint_safe_globals
from .checkpoint_files import (
    CheckpointMismatchError,
    ResumeError,
    checkpoint_problem,
    find_resume_checkpoint,
    state_dict_mismatch,
)
from .constants import IMAGENET_MEAN, IMAGENET_STD, IMG_EXTS
from .dist import init_dist_device_agnostic, shutdown_dist
from .json_files import atomic_json
from .senet_checkpoint import (
    SENET_URLS,
    convert_senet_state_dict,
    load_senet_checkpoint,
)
from .slide_merge import concat_dets, drop_edge_boxes, index_dets, merge_detections
from .work_dir_lock import WorkDirLock, WorkDirLockedError

__all__ = [
    'checkpoint_safe_globals', 'register_checkpoint_safe_globals',
    'init_dist_device_agnostic', 'shutdown_dist', 'SENET_URLS',
    'convert_senet_state_dict', 'load_senet_checkpoint', 'concat_dets',
    'drop_edge_boxes', 'index_dets', 'merge_detections',
    'CheckpointMismatchError', 'ResumeError', 'checkpoint_problem',
    'find_resume_checkpoint', 'state_dict_mismatch', 'WorkDirLock',
    'WorkDirLockedError', 'IMG_EXTS', 'IMAGENET_MEAN', 'IMAGENET_STD',
    'atomic_json'
]
