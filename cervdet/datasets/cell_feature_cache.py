"""Precompute the CNN features of every cell of an ROI set (feature cache).

The logic of ``tools/roi_cls/extract_cell_features.py``.

Training the ROI classifier on cached features does not rerun the cell CNN:
each ROI gets one ``.npz`` holding

- ``pooled``: ``[N, C]`` global average of the stage-4 map,
- ``maps``: ``[N, C, h, w]`` the stage-4 map (left out with ``no_maps``),
- ``boxes``: ``[N, 4]`` the xyxy cell boxes they come from (checked by
  ``LoadCellFeatures``: a cache whose boxes differ is stale),
- ``fingerprint``: JSON of the encoder config, checkpoint, crop size and
  normalisation (a cache with another fingerprint is stale too),

stored as ``dtype`` (float16 by default). The encoder is the config's
``cell_encoder`` (an mmpretrain backbone, e.g. ``ResNet`` depth 50 with
``out_indices=(3, )``), cells are cropped with ``CropCells(cfg.cell_size,
context=cfg.get('cell_context', 0.))`` and normalised as the model's
data preprocessor does (see :func:`normalisation`). The cache folder is the
``feature_cache`` of the split's dataset config (or ``out_dir``).

The encoder's weights (a loaded checkpoint, or a random initialisation
seeded with ``seed``) are written beside the caches as
``cell_encoder.pth``: ``tools/roi_cls/infer_rois.py --encoder-checkpoint``
runs the very same CNN from pixels.

Runs are resumable: ROIs whose cache exists and matches are skipped. Caches
that exist but are stale are only replaced with ``force_overwrite``.
"""
import json
import os
import os.path as osp
import time
import warnings
from typing import Dict, List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmpretrain.registry import DATASETS, MODELS
from tqdm import tqdm

from cervdet.utils.checkpoint_files import strip_key_prefix

from .transforms import check_cache_boxes, crop_and_resize, expand_boxes

SPLITS = ('train', 'val', 'test')
#: The encoder weights written beside the caches.
ENCODER_FILE = 'cell_encoder.pth'


def dataset_cfg(cfg, split: str):
    """The (unwrapped) dataset config of ``<split>_dataloader`` (``None``
    when the config has no such loader)."""
    loader = cfg.get(f'{split}_dataloader')
    if not loader or 'dataset' not in loader:
        return None
    ds = loader['dataset']
    while 'dataset' in ds and ds.get('type') != 'ROIBagDataset':
        ds = ds['dataset']  # dataset wrappers (ClassBalancedDataset, ...)
    return ds


def build_encoder(cfg, checkpoint: Optional[str], prefix: str,
                  device: str) -> torch.nn.Module:
    """Build ``cfg.cell_encoder`` (mmpretrain MODELS) and load its weights.

    Raises:
        ValueError: If the config has no ``cell_encoder``, the checkpoint
            has no key with ``prefix``, or the encoder would download
            pretrained weights (pass a local ``--checkpoint`` instead).
    """
    if 'cell_encoder' not in cfg:
        raise ValueError('the config has no top-level cell_encoder (an '
                         'mmpretrain backbone config, e.g. dict(type='
                         '"ResNet", depth=50, out_indices=(3, )))')
    enc_cfg = cfg.cell_encoder.copy()
    init_cfg = enc_cfg.get('init_cfg')
    if checkpoint:
        enc_cfg.pop('init_cfg', None)
    encoder = MODELS.build(enc_cfg)
    if checkpoint:
        ckpt = _load_checkpoint(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) \
            else ckpt
        state = strip_key_prefix(state, prefix, checkpoint,
                                 '--checkpoint-prefix')
        load_state_dict(encoder, state, strict=False)
    else:
        ckpt_path = (init_cfg or {}).get('checkpoint', '') if isinstance(
            init_cfg, dict) else ''
        if str(ckpt_path).startswith(('http://', 'https://')):
            raise ValueError(
                f'cell_encoder.init_cfg would download {ckpt_path}; nothing '
                'is downloaded at run time: pass a local file with '
                '--checkpoint (and --checkpoint-prefix)')
        if init_cfg:
            encoder.init_weights()
        else:
            warnings.warn('no --checkpoint and no cell_encoder.init_cfg: '
                          'the features come from a randomly initialised '
                          'encoder', stacklevel=2)
    encoder.to(device)
    encoder.eval()  # (mmpretrain's ResNet.train returns None)
    return encoder


def normalisation(cfg) -> Tuple[np.ndarray, np.ndarray, bool]:
    """``(mean, std, to_rgb)`` the cell encoder sees in pixel mode.

    The one rule shared with inference from pixels
    (:func:`cervdet.apis.cell_normalisation`): those of
    ``cfg.model.data_preprocessor`` when it sets ``mean`` (``to_rgb``
    defaulting to False, as in ``ROIBagDataPreprocessor``), else ImageNet's
    mean/std on RGB.
    """
    from cervdet.apis import cell_normalisation
    return cell_normalisation(cfg)


def cache_matches(path: str, boxes: np.ndarray, fingerprint: str,
                  need_maps: bool) -> Optional[bool]:
    """``None`` when there is no cache, else whether it is up to date."""
    if not osp.isfile(path):
        return None
    try:
        with np.load(path) as data:
            return ('boxes' in data and 'pooled' in data
                    and (not need_maps or 'maps' in data)
                    and 'fingerprint' in data
                    and str(data['fingerprint']) == fingerprint
                    and check_cache_boxes(data['boxes'], boxes))
    except Exception:  # unreadable (e.g. truncated) file
        return False


def save_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write an npz atomically (a crash never leaves a half-written cache).

    Args:
        path (str): Destination ``.npz``.
        arrays (dict[str, np.ndarray]): The arrays to store.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


@torch.no_grad()
def encode(encoder: torch.nn.Module, crops: np.ndarray, mean: np.ndarray,
           std: np.ndarray, to_rgb: bool, batch_size: int,
           device: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Features of uint8 crops ``[M, 3, S, S]`` (BGR).

    Returns:
        tuple: ``(pooled [M, C], maps [M, C, h, w] or None)`` on the CPU.
    """
    mean_t = torch.from_numpy(mean).view(1, 3, 1, 1).to(device)
    std_t = torch.from_numpy(std).view(1, 3, 1, 1).to(device)
    pooled, maps = [], []
    for start in range(0, len(crops), batch_size):
        x = torch.from_numpy(crops[start:start + batch_size]).to(device)
        if to_rgb:
            x = x.flip(1)
        x = (x.float() - mean_t) / std_t
        out = encoder(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        if out.dim() == 4:  # [B, C, h, w]
            maps.append(out.cpu())
            pooled.append(out.mean(dim=(2, 3)).cpu())
        else:
            pooled.append(out.reshape(len(x), -1).cpu())
    return torch.cat(pooled), (torch.cat(maps) if maps else None)


def save_encoder(encoder: torch.nn.Module, path: str,
                 force_overwrite: bool = False) -> None:
    """Write the encoder's state dict to ``path`` (``{'state_dict': ...}``).

    An existing file with the same weights is kept; one with other weights
    is only replaced with ``force_overwrite``.

    Raises:
        FileExistsError: ``path`` holds another encoder.
    """
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    if osp.isfile(path):
        old = torch.load(path, map_location='cpu',
                         weights_only=True).get('state_dict', {})
        same = old.keys() == state.keys() and all(
            torch.equal(old[k], state[k]) for k in state)
        if same:
            return
        if not force_overwrite:
            raise FileExistsError(
                f'{path} holds another encoder; pass --force-overwrite to '
                'replace it (and its caches) or choose another --out-dir')
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    torch.save(dict(state_dict=state), path)


def extract_cell_features(config: str, split: str = 'all',
                          checkpoint: Optional[str] = None,
                          checkpoint_prefix: str = '',
                          out_dir: Optional[str] = None,
                          batch_size: int = 64, device: str = 'cpu',
                          dtype: str = 'float16', no_maps: bool = False,
                          force_overwrite: bool = False, seed: int = 0,
                          progress: bool = True) -> Dict:
    """Cache the cell features of the ROIs of a config's split(s).

    Args:
        config (str): ROI classifier config (``cell_encoder``,
            ``cell_size`` and ROIBagDataset loaders).
        split (str): ``train``, ``val``, ``test`` or ``all``.
        checkpoint (str, optional): Local checkpoint of the cell encoder.
        checkpoint_prefix (str): Key prefix of the encoder in it.
        out_dir (str, optional): Cache folder instead of the datasets'
            ``feature_cache``.
        batch_size (int): Cells per forward pass.
        device (str): ``cpu`` or ``cuda[:i]``.
        dtype (str): ``float16`` or ``float32`` of the stored arrays.
        no_maps (bool): Store only the pooled features.
        force_overwrite (bool): Replace stale caches (and another encoder).
        seed (int): Seed of the encoder initialisation.
        progress (bool): Show a progress bar.

    Returns:
        dict: ``num_rois``, ``num_cached`` (up to date, skipped),
        ``num_extracted`` ROIs, ``num_cells``, ``seconds``, ``cell_size``.

    Raises:
        ValueError: The config lacks what is needed.
        FileExistsError: Stale caches or another encoder without
            ``force_overwrite``.
    """
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if 'cell_size' not in cfg:
        raise ValueError(f'{config} has no top-level cell_size')
    size = int(cfg.cell_size)
    context = float(cfg.get('cell_context', 0.0))
    mean, std, to_rgb = normalisation(cfg)
    fingerprint = json.dumps(dict(
        cell_encoder=cfg.cell_encoder.to_dict() if hasattr(
            cfg.cell_encoder, 'to_dict') else dict(cfg.cell_encoder),
        checkpoint=osp.abspath(checkpoint) if checkpoint else None,
        checkpoint_prefix=checkpoint_prefix, cell_size=size,
        cell_context=context, mean=mean.tolist(), std=std.tolist(),
        to_rgb=to_rgb, dtype=dtype, seed=seed), sort_keys=True,
        default=str)

    # ROIs of the requested splits (a split shared by two loaders once)
    todo: List[dict] = []
    seen = set()
    for name in (SPLITS if split == 'all' else (split, )):
        ds_cfg = dataset_cfg(cfg, name)
        if ds_cfg is None:
            if split != 'all':
                raise ValueError(f'{config} has no {name}_dataloader')
            continue
        ds_cfg = ds_cfg.copy()
        if out_dir:
            ds_cfg['feature_cache'] = osp.abspath(out_dir)
        if not ds_cfg.get('feature_cache'):
            raise ValueError(f'the {name} dataset of {config} has no '
                             'feature_cache and no --out-dir was given')
        ds_cfg['pipeline'] = []
        dataset = DATASETS.build(ds_cfg)
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            if info['cache_path'] not in seen:
                seen.add(info['cache_path'])
                todo.append(info)
    states = [cache_matches(info['cache_path'], info['cell_bboxes'],
                            fingerprint, not no_maps) for info in todo]
    stale = [info['cache_path'] for info, s in zip(todo, states) if s is False]
    if stale and not force_overwrite:
        raise FileExistsError(
            f'{len(stale)} existing caches are stale (other boxes or '
            f'another encoder/checkpoint), e.g. {stale[:3]}; refusing to '
            'overwrite them. Pass --force-overwrite to replace them, or '
            'choose another --out-dir.')
    run = [info for info, s in zip(todo, states) if s is not True]
    summary = dict(num_rois=len(todo), num_cached=len(todo) - len(run),
                   num_extracted=len(run), num_cells=0, seconds=0.,
                   cell_size=size)
    if not run:
        return summary
    torch.manual_seed(seed)
    encoder = build_encoder(cfg, checkpoint, checkpoint_prefix, device)
    # The encoder weights beside the caches: tools/roi_cls/infer_rois.py
    # runs the same CNN from pixels (--encoder-checkpoint).
    for cache_dir in sorted({osp.dirname(info['cache_path']) for info in run}):
        save_encoder(encoder, osp.join(cache_dir, ENCODER_FILE),
                     force_overwrite)
    np_dtype = np.float16 if dtype == 'float16' else np.float32

    t0, n_cells = time.time(), 0
    bar = tqdm(total=len(run), unit='roi', desc='cell features',
               disable=not progress)
    pending: List[Tuple[dict, np.ndarray]] = []

    def flush() -> None:
        """Encode the pending ROIs' cells together and write their caches."""
        nonlocal n_cells
        crops = np.concatenate([c for _, c in pending])
        pooled, maps = encode(encoder, crops, mean, std, to_rgb, batch_size,
                              device)
        start = 0
        for info, c in pending:
            stop = start + len(c)
            arrays = dict(pooled=pooled[start:stop].numpy().astype(np_dtype),
                          boxes=np.asarray(info['cell_bboxes'], np.float32),
                          fingerprint=np.array(fingerprint))
            if maps is not None and not no_maps:
                arrays['maps'] = maps[start:stop].numpy().astype(np_dtype)
            save_npz(info['cache_path'], arrays)
            start = stop
            bar.update(1)
        n_cells += len(crops)
        pending.clear()

    for info in run:
        img = mmcv.imread(info['img_path'], channel_order='bgr')
        if img is None:
            raise FileNotFoundError(f'cannot read ROI {info["img_path"]}')
        crops = crop_and_resize(img, expand_boxes(info['cell_bboxes'], context),
                                size)
        pending.append((info, crops))
        if sum(len(c) for _, c in pending) >= batch_size:
            flush()
    if pending:
        flush()
    bar.close()
    summary.update(num_cells=n_cells, seconds=max(time.time() - t0, 1e-9))
    return summary


__all__ = ['SPLITS', 'ENCODER_FILE', 'dataset_cfg', 'build_encoder',
           'normalisation', 'cache_matches', 'save_npz', 'encode',
           'save_encoder', 'extract_cell_features']
