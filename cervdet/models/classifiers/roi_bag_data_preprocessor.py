"""Batch collation of ROI bags (variable numbers of cells) for
:class:`~cervdet.models.classifiers.GlobalLocalROIClassifier`.

The dataset (``PackROIBagInputs``, collated by mmengine's ``pseudo_collate``)
gives one entry per ROI, with ``N_i >= 1`` cells:

* pixel mode: ``torch.uint8`` Tensor[N_i, 3, S, S] cell crops (BGR as loaded
  by mmcv; ``to_rgb=True`` flips them to RGB);
* cached mode: ``dict(pooled=Tensor[N_i, C], maps=Tensor[N_i, C, h, w])``
  (``maps`` optional).

The preprocessor pads every ROI to ``N_max`` of the batch and returns::

    dict(inputs=dict(cells=Tensor[B, N_max, 3, S, S] float (normalised),
                     mask=Tensor[B, N_max] bool),            # pixel mode
         data_samples=[...])
    dict(inputs=dict(pooled=Tensor[B, N_max, C],
                     maps=Tensor[B, N_max, C, h, w],         # if given
                     mask=Tensor[B, N_max] bool),            # cached mode
         data_samples=[...])

with ``mask`` True for real cells; padded slots are 0. Everything is moved to
the model's device.

Usage (in a config; ImageNet's statistics, ``cervdet.utils.constants``'s
``IMAGENET_MEAN``/``IMAGENET_STD``)::

    data_preprocessor = dict(
        type='ROIBagDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        to_rgb=True)
"""
from numbers import Number
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

CACHED_KEYS = ('pooled', 'maps')


def pad_bags(bags: Sequence[Tensor]) -> tuple:
    """Pad a list of per-ROI tensors along their first (cell) dimension.

    Args:
        bags (Sequence[Tensor[N_i, ...]]): One tensor per ROI, same trailing
            shape.

    Returns:
        tuple: ``padded`` Tensor[B, N_max, ...] (zeros on padding) and
        ``mask`` Tensor[B, N_max] bool.
    """
    lengths = torch.tensor([b.shape[0] for b in bags],
                           device=bags[0].device)
    padded = pad_sequence(list(bags), batch_first=True)
    n_max = padded.shape[1]
    mask = torch.arange(n_max, device=lengths.device)[None] < lengths[:, None]
    return padded, mask


def _sample_name(data_samples, i: int) -> str:
    """``img_path`` (or index) of sample ``i`` for error messages."""
    if data_samples is not None and i < len(data_samples):
        path = data_samples[i].metainfo.get('img_path')
        if path is not None:
            return f'ROI {i} ({path})'
    return f'ROI {i}'


@MODELS.register_module()
class ROIBagDataPreprocessor(BaseDataPreprocessor):
    """Pad, normalise and move a batch of ROI bags.

    Args:
        mean (Sequence[Number], optional): Per-channel pixel mean (in the
            channel order after ``to_rgb``); pixel mode only. Defaults to
            None (no normalisation).
        std (Sequence[Number], optional): Per-channel pixel std.
        to_rgb (bool): Flip BGR crops to RGB (pixel mode). Defaults to
            False.
        non_blocking (bool): Non-blocking device copies.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 to_rgb: bool = False,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.to_rgb = bool(to_rgb)
        if (mean is None) != (std is None):
            raise ValueError('ROIBagDataPreprocessor: give both mean and std '
                             '(or neither)')
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            if len(mean) != 3 or len(std) != 3:
                raise ValueError('mean and std need 3 values (one per '
                                 f'channel); got {mean} and {std}')
            self.register_buffer('mean',
                                 torch.tensor(mean).float().view(3, 1, 1),
                                 False)
            self.register_buffer('std',
                                 torch.tensor(std).float().view(3, 1, 1),
                                 False)

    @staticmethod
    def _as_list(inputs) -> List:
        """Per-ROI entries from ``pseudo_collate`` (list) or an already
        stacked batch (Tensor[B, N, ...] or dict of such tensors)."""
        if isinstance(inputs, Tensor):
            return list(inputs.unbind(0))
        if isinstance(inputs, dict):
            keys = [k for k in CACHED_KEYS if k in inputs]
            if not keys:
                raise ValueError('cached ROI inputs need a "pooled" entry; '
                                 f'got keys {sorted(inputs)}')
            if isinstance(inputs[keys[0]], Tensor):
                b = inputs[keys[0]].shape[0]
                return [{k: inputs[k][i] for k in keys} for i in range(b)]
            b = len(inputs[keys[0]])
            return [{k: inputs[k][i] for k in keys} for i in range(b)]
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        raise TypeError('ROI inputs must be a list of Tensor[N, 3, S, S] or '
                        'of dict(pooled=..., maps=...); got '
                        f'{type(inputs).__name__}')

    def _normalize(self, cells: Tensor) -> Tensor:
        """``Tensor[N, 3, S, S]`` uint8/float -> float, RGB, normalised."""
        if cells.dim() != 4 or cells.shape[1] != 3:
            raise ValueError('pixel-mode cells must be Tensor[N, 3, S, S]; '
                             f'got shape {tuple(cells.shape)}')
        if self.to_rgb:
            cells = cells.flip(1)
        cells = cells.float()
        if self._enable_normalize:
            cells = (cells - self.mean) / self.std
        return cells

    def forward(self, data: dict, training: bool = False) -> dict:
        """Collate a batch of ROI bags.

        Args:
            data (dict): ``inputs`` (see the module docstring) and
                ``data_samples`` (list of ``DataSample``).
            training (bool): Unused (no batch augmentation).

        Returns:
            dict: ``inputs`` (dict with ``cells`` or ``pooled`` [+ ``maps``]
            and ``mask``) and ``data_samples``.
        """
        data = self.cast_data(data)
        data_samples = data.get('data_samples', None)
        bags = self._as_list(data['inputs'])
        if not bags:
            raise ValueError('ROIBagDataPreprocessor got an empty batch')
        for i, bag in enumerate(bags):
            first = bag['pooled'] if isinstance(bag, dict) else bag
            if first.shape[0] == 0:
                raise ValueError(
                    f'{_sample_name(data_samples, i)} has no cell: every ROI '
                    'needs at least one cell box; fix the annotation or use '
                    "the dataset option empty_roi='skip'")
        if isinstance(bags[0], dict):
            inputs = self._collate_cached(bags, data_samples)
        else:
            cells, mask = pad_bags([self._normalize(b) for b in bags])
            inputs = dict(cells=cells, mask=mask)
        return dict(inputs=inputs, data_samples=data_samples)

    def _collate_cached(self, bags: List[dict], data_samples) -> dict:
        """Pad cached ``pooled`` / ``maps`` features."""
        has_maps = ['maps' in b for b in bags]
        if any(has_maps) and not all(has_maps):
            missing = [_sample_name(data_samples, i)
                       for i, h in enumerate(has_maps) if not h]
            raise ValueError(f'{", ".join(missing)} have no cached "maps" '
                             'while others do: re-extract the features of '
                             'all ROIs with the same options')
        for i, b in enumerate(bags):
            if 'pooled' not in b:
                raise ValueError(f'{_sample_name(data_samples, i)}: cached '
                                 'inputs need a "pooled" Tensor[N, C] entry')
            n = b['pooled'].shape[0]
            if 'maps' in b and b['maps'].shape[0] != n:
                raise ValueError(
                    f'{_sample_name(data_samples, i)}: "maps" has '
                    f'{b["maps"].shape[0]} cells but "pooled" has {n}')
        pooled, mask = pad_bags([b['pooled'].float() for b in bags])
        out = dict(pooled=pooled, mask=mask)
        if all(has_maps):
            out['maps'] = pad_bags([b['maps'].float() for b in bags])[0]
        return out


__all__ = ['ROIBagDataPreprocessor', 'pad_bags']
