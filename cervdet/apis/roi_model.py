"""The ROI classifier of :class:`~cervdet.apis.ROIInferencer`, built and
loaded for inference.

A model trained on cached cell features has no ``cell_encoder`` in its
``model`` config: the config's top-level ``cell_encoder`` (the backbone the
cache was extracted with) is attached and loaded from an encoder checkpoint
(or its local ``init_cfg``); nothing is downloaded at run time. A model
trained from pixels keeps its own encoder (from the ROI checkpoint), which
an encoder checkpoint may override.
"""
import copy
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.utils.checkpoint_files import strip_key_prefix


def load_state(path: str) -> Tuple[dict, dict]:
    """``(state_dict, meta)`` of a checkpoint on the CPU (a ``module.``
    prefix of DDP checkpoints removed).

    Raises:
        FileNotFoundError: When ``path`` is missing.
        ValueError: When it is not a checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} not found')
    ckpt = _load_checkpoint(path, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} is not a checkpoint (a dict with '
                         '"state_dict")')
    state = ckpt.get('state_dict', ckpt)
    state = {k[7:] if k.startswith('module.') else k: v
             for k, v in state.items()}
    return state, ckpt.get('meta', {}) or {}


def roi_model_cfg(cfg: Config, config_path: Optional[str],
                  encoder_checkpoint: Optional[str],
                  allow_random_encoder: bool) -> Tuple[dict, bool, bool]:
    """The model config to build, with the cell encoder attached when the
    model was trained on cached features.

    Args:
        cfg (Config): The ROI classifier config.
        config_path (str, optional): Its path (messages).
        encoder_checkpoint (str, optional): Encoder weights to load.
        allow_random_encoder (bool): Accept an attached encoder without
            weights (warns).

    Returns:
        tuple: ``(model_cfg, attached_encoder, init_encoder)``;
        ``init_encoder`` is True when the attached encoder loads its local
        ``init_cfg`` checkpoint (``init_weights`` after building).

    Raises:
        ValueError: Without ``model``, without a top-level ``cell_encoder``
            for a cached-feature model, with an ``init_cfg`` that would
            download, or without encoder weights (``allow_random_encoder``).
    """
    if 'model' not in cfg:
        raise ValueError(f'{config_path}: the ROI config has no "model"')
    model_cfg = copy.deepcopy(cfg.model)
    attached = not model_cfg.get('cell_encoder')
    if not attached:
        return model_cfg, False, False
    if 'cell_encoder' not in cfg:
        raise ValueError(
            f'{config_path}: the model has no cell_encoder (trained '
            'on cached features) and the config has no top-level '
            'cell_encoder to compute features from pixels; add the '
            'backbone the feature cache was extracted with, e.g. '
            "cell_encoder = dict(type='ResNet', depth=50, "
            'out_indices=(3, ))')
    enc_cfg = copy.deepcopy(cfg.cell_encoder)
    init_cfg = enc_cfg.get('init_cfg')
    remote = isinstance(init_cfg, dict) and str(init_cfg.get(
        'checkpoint', '')).startswith(('http://', 'https://'))
    local_init = isinstance(init_cfg, dict) and bool(
        init_cfg.get('checkpoint')) and not remote
    if remote and not encoder_checkpoint:
        raise ValueError(
            f'cell_encoder.init_cfg would download '
            f'{init_cfg["checkpoint"]}; nothing is downloaded at run '
            'time: pass a local --encoder-checkpoint (and '
            '--encoder-checkpoint-prefix)')
    if not encoder_checkpoint and not local_init:
        if not allow_random_encoder:
            raise ValueError(
                f'{config_path}: the ROI model was trained on '
                'cached features and no encoder checkpoint was '
                'given: pass --encoder-checkpoint (the checkpoint '
                'tools/roi_cls/extract_cell_features.py used, with '
                'its --checkpoint-prefix), or --allow-random-encoder '
                'if the cache really came from a random encoder')
        warnings.warn(
            'ROIInferencer: the cell encoder is RANDOMLY initialised; '
            'the predictions only mean something if the feature '
            'cache of training was made with the very same random '
            'weights', stacklevel=4)
    if encoder_checkpoint:
        enc_cfg.pop('init_cfg', None)
    model_cfg['cell_encoder'] = enc_cfg
    return model_cfg, True, bool(local_init and not encoder_checkpoint)


def load_roi_checkpoint(model: torch.nn.Module, roi_checkpoint: str,
                        attached_encoder: bool,
                        config_path: Optional[str]) -> dict:
    """Load the ROI classifier's weights (every key but an attached
    encoder's must fit); returns the checkpoint's ``meta``.

    Raises:
        ValueError: When the checkpoint does not fit the model.
    """
    state, meta = load_state(roi_checkpoint)
    own = model.state_dict()
    skip = ('cell_encoder.', ) if attached_encoder else ()
    missing = [k for k in own if k not in state and not k.startswith(
        skip or ('\0', ))]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f'{roi_checkpoint} does not fit the model of '
            f'{config_path}: missing keys {missing[:5]}, unexpected '
            f'keys {unexpected[:5]}; use the checkpoint trained with this '
            'config')
    model.load_state_dict(state, strict=False)
    return meta


def load_encoder_weights(model: torch.nn.Module, encoder_checkpoint: str,
                         prefix: str = '') -> None:
    """Load ``model.cell_encoder`` from ``encoder_checkpoint`` (the keys
    under ``prefix``, e.g. ``'backbone.'``).

    Raises:
        ValueError: When no key starts with ``prefix`` or none fits.
    """
    enc_state, _ = load_state(encoder_checkpoint)
    enc_state = strip_key_prefix(enc_state, prefix, encoder_checkpoint,
                                 '--encoder-checkpoint-prefix')
    enc_own = model.cell_encoder.state_dict()
    if not any(k in enc_own for k in enc_state):
        raise ValueError(
            f'{encoder_checkpoint}: no key fits the cell encoder '
            f'(keys look like {list(enc_state)[:3]}); set '
            '--encoder-checkpoint-prefix (e.g. "backbone.")')
    model.cell_encoder.load_state_dict(enc_state, strict=False)


def build_roi_model(cfg: Config, roi_checkpoint: str,
                    config_path: Optional[str] = None,
                    encoder_checkpoint: Optional[str] = None,
                    encoder_checkpoint_prefix: str = '',
                    allow_random_encoder: bool = False
                    ) -> Tuple[torch.nn.Module, dict, bool]:
    """Build the ROI classifier (mmpretrain scope) and load its weights.

    Returns:
        tuple: ``(model, meta, attached_encoder)``: the model on the CPU,
        the ROI checkpoint's ``meta`` and whether the cell encoder was
        attached from the config's top-level ``cell_encoder``.
    """
    model_cfg, attached, init_encoder = roi_model_cfg(
        cfg, config_path, encoder_checkpoint, allow_random_encoder)
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    if init_encoder:
        model.cell_encoder.init_weights()
    meta = load_roi_checkpoint(model, str(roi_checkpoint), attached,
                               config_path)
    if encoder_checkpoint:
        load_encoder_weights(model, str(encoder_checkpoint),
                             encoder_checkpoint_prefix)
    return model, meta, attached


def roi_classes(model: torch.nn.Module, meta: dict,
                cfg: Config) -> List[str]:
    """Class names: the model's, else the checkpoint's, else the config's
    test dataset's; ``class_<i>`` when none has ``num_classes`` names."""
    classes: Optional[Sequence[str]] = model.class_names or (
        meta.get('dataset_meta') or {}).get('classes')
    if not classes:
        test_ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
        classes = (test_ds.get('metainfo') or {}).get('classes')
    if not classes or len(classes) != model.num_classes:
        classes = [f'class_{i}' for i in range(model.num_classes)]
    return list(classes)


__all__ = ['load_state', 'roi_model_cfg', 'load_roi_checkpoint',
           'load_encoder_weights', 'build_roi_model', 'roi_classes']
