"""A Runner that trains with the same scripts on GPUs (nccl) and CPUs (gloo)."""
import copy
from typing import Dict, Optional

import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from mmengine.device import get_device
from mmengine.dist import is_distributed
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner

from cervdet.utils.dist import init_dist_device_agnostic


@RUNNERS.register_module()
class CervdetRunner(Runner):
    """:class:`mmengine.runner.Runner` with device-agnostic distribution.

    Differences from the parent, only when ``launcher='pytorch'``:

    - the process group is initialised by
      :func:`cervdet.utils.init_dist_device_agnostic` (no
      ``torch.cuda.set_device`` on CPU machines; ``nccl`` falls back to
      ``gloo`` where no GPU is visible);
    - on CPU the model is wrapped in DDP without ``device_ids`` (CPU modules
      take none; MMEngine passes ``[LOCAL_RANK]``).

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
