"""Build a detector for inference and load its checkpoint strictly.

``mmdet.apis.init_detector`` loads checkpoints with ``strict=False``: a
checkpoint of another config (other widths, other classes) only logs
warnings and the model then predicts with partly random weights. The
inference tools of cervdet (``SlideInferencer``, ``ROIInferencer``) use
:func:`init_detector_strict` instead, which refuses such a checkpoint with
a message naming the fix.
"""
import copy
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope


def init_detector_strict(config: Union[str, Config],
                         checkpoint: Optional[str] = None,
                         device: Union[str, torch.device] = 'cpu'
                         ) -> torch.nn.Module:
    """The detector of ``config`` for inference (like mmdet's
    ``init_detector``: no backbone download, SyncBN reverted, ``model.cfg``
    set), with ``checkpoint`` loaded strictly.

    Args:
        config (str | Config): Detector config.
        checkpoint (str, optional): Its checkpoint (None: untrained).
        device (str | torch.device): Device of the returned model.

    Returns:
        nn.Module: The model in eval mode; ``dataset_meta`` is the
        checkpoint's (``{}`` when it has none, or without checkpoint).

    Raises:
        FileNotFoundError: Missing checkpoint file.
        ValueError: A checkpoint that does not fit the model.
    """
    import os.path as osp

    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint

    import cervdet  # noqa: F401  (registers cervdet modules)
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    name = getattr(cfg, 'filename', None) or 'the config'
    model_cfg = copy.deepcopy(cfg.model)
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg['backbone']['init_cfg'] = None
    if 'train_cfg' in model_cfg:
        model_cfg['train_cfg'] = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    model.cfg = cfg
    model.dataset_meta = {}
    if checkpoint is not None:
        checkpoint = str(checkpoint)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} not found')
        try:
            ckpt = load_checkpoint(model, checkpoint, map_location='cpu',
                                   strict=True, logger='silent')
        except RuntimeError as e:
            raise ValueError(
                f'checkpoint {checkpoint} does not fit the model of {name}: '
                f'{str(e)[:600]} ... use the config the checkpoint was '
                'trained with (tools/train.py saves it in the work dir)'
            ) from e
        meta = (ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
        model.dataset_meta = dict(meta.get('dataset_meta') or {})
    return model.to(device).eval()


__all__ = ['init_detector_strict']
