from .checkpoint_compat import (checkpoint_safe_globals,
                                register_checkpoint_safe_globals)
from .dist import init_dist_device_agnostic, shutdown_dist
from .senet_checkpoint import (SENET_URLS, convert_senet_state_dict,
                               load_senet_checkpoint)

__all__ = [
    'checkpoint_safe_globals', 'register_checkpoint_safe_globals',
    'init_dist_device_agnostic', 'shutdown_dist', 'SENET_URLS',
    'convert_senet_state_dict', 'load_senet_checkpoint'
]
from .slide_merge import (concat_dets, drop_edge_boxes, index_dets,  # noqa
                          merge_detections)

__all__ += ['concat_dets', 'drop_edge_boxes', 'index_dets',
            'merge_detections']
from .checkpoint_files import (CheckpointMismatchError, ResumeError,  # noqa
                               checkpoint_problem, find_resume_checkpoint,
                               state_dict_mismatch)
from .work_dir_lock import WorkDirLock, WorkDirLockedError  # noqa: E402

__all__ += ['CheckpointMismatchError', 'ResumeError', 'checkpoint_problem',
            'find_resume_checkpoint', 'state_dict_mismatch', 'WorkDirLock',
            'WorkDirLockedError']
