"""Collate slide bags (top-k cells of ``tools/slide_infer.py``) for
:class:`~cervdet.models.classifiers.SlideMILClassifier`.

:class:`SlideBagDataPreprocessor` keeps the ``top_k`` highest-scoring cells
of every bag and pads the batch::

    dict(scores=Tensor[B, K], mask=Tensor[B, K] bool, feats=Tensor[B, K, C],
         bboxes=Tensor[B, K, 4], index=Tensor[B, K] long)

(``index`` = the cell's row in its ``cells_topk.npz``, -1 on padding; cells
sorted by decreasing score; bags without cells are all padding).
"""
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..slide_aggregators.topk_cells import topk_cells

BAG_KEYS = ('scores', 'feats', 'bboxes')


def pad_slide_bags(scores: Sequence[Tensor],
                   feats: Optional[Sequence[Tensor]] = None,
                   bboxes: Optional[Sequence[Tensor]] = None,
                   top_k: Optional[int] = None) -> Dict[str, Tensor]:
    """Keep the ``top_k`` best cells of every bag and pad the batch.

    Args:
        scores (Sequence[Tensor[K_i]]): Cell scores per slide (``K_i`` may
            be 0).
        feats (Sequence[Tensor[K_i, C]], optional): Cell features (an empty
            bag may have ``C = 0``).
        bboxes (Sequence[Tensor[K_i, 4]], optional): Cell boxes.
        top_k (int, optional): Cells kept per slide (by score); all when
            None.

    Returns:
        dict: ``scores`` Tensor[B, K], ``mask`` Tensor[B, K] bool,
        ``index`` Tensor[B, K] long (-1 on padding), and ``feats``
        Tensor[B, K, C] / ``bboxes`` Tensor[B, K, 4] when given; valid cells
        first, by decreasing score.
    """
    if not len(scores):
        raise ValueError('SlideBagDataPreprocessor got an empty batch')
    scores = [s.reshape(-1).float() for s in scores]
    dev = scores[0].device
    lengths = torch.tensor([len(s) for s in scores], device=dev)
    k_max = int(lengths.max())
    b = len(scores)
    padded = pad_sequence(scores, batch_first=True) if k_max else \
        scores[0].new_zeros((b, 0))
    mask = torch.arange(k_max, device=dev)[None] < lengths[:, None]
    index = torch.arange(k_max, device=dev).expand(b, -1)
    if top_k is not None and k_max:
        padded, index, mask = topk_cells(padded, top_k, mask)
    index = index.masked_fill(~mask, -1)
    out = dict(scores=padded.masked_fill(~mask, 0.), mask=mask, index=index)
    gather = index.clamp(min=0)

    def _pad_rows(rows: Sequence[Tensor], width: int) -> Tensor:
        rows = [r.float().reshape(len(s), width)
                for r, s in zip(rows, scores)]
        if not k_max:
            return scores[0].new_zeros((b, 0, width))
        full = pad_sequence(rows, batch_first=True)
        full = full.gather(1, gather[..., None].expand(-1, -1, width))
        return full.masked_fill(~mask[..., None], 0.)

    if feats is not None:
        widths = {int(f.shape[-1]) for f, s in zip(feats, scores)
                  if len(s) and f.dim() == 2}
        if not widths:  # only empty bags: keep their declared width
            widths = {max(int(f.shape[-1]) if f.dim() == 2 else 0
                          for f in feats)}
        if len(widths) > 1:
            raise ValueError(f'the slides of a batch have cell features of '
                             f'different widths {sorted(widths)}: extract '
                             'all bags with the same detector')
        out['feats'] = _pad_rows(feats, widths.pop() if widths else 0)
    if bboxes is not None:
        out['bboxes'] = _pad_rows(bboxes, 4)
    return out


@MODELS.register_module()
class SlideBagDataPreprocessor(BaseDataPreprocessor):
    """Collate slide bags for :class:`SlideMILClassifier` (see the module
    module docstring). Registered in mmpretrain's MODELS:
    ``data_preprocessor=dict(type='SlideBagDataPreprocessor', top_k=...)``.

    Args:
        top_k (int, optional): Cells kept per slide by score. Defaults to
            None (all cells of the bag).
        non_blocking (bool): Non-blocking device copies.
    """

    def __init__(self, top_k: Optional[int] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        if top_k is not None and top_k < 1:
            raise ValueError(f'SlideBagDataPreprocessor: top_k must be >= 1 '
                             f'or None; got {top_k}')
        self.top_k = top_k

    @staticmethod
    def _columns(inputs) -> Dict[str, list]:
        """Per-slide lists of ``scores`` / ``feats`` / ``bboxes``."""
        if isinstance(inputs, (list, tuple)):
            if inputs and not all(isinstance(i, dict) for i in inputs):
                raise TypeError('slide bag inputs must be dicts with '
                                '"scores" (SlideBagDataset)')
            keys = [k for k in BAG_KEYS if inputs and k in inputs[0]]
            return {k: [i[k] for i in inputs] for k in keys}
        if isinstance(inputs, dict):
            if 'scores' not in inputs:
                raise ValueError('slide bag inputs need "scores"; got keys '
                                 f'{sorted(inputs)}')
            return {k: list(inputs[k]) for k in BAG_KEYS if k in inputs}
        raise TypeError('slide bag inputs must be a list of dict(scores, '
                        'feats, bboxes) or a dict of lists; got '
                        f'{type(inputs).__name__}')

    def forward(self, data: dict, training: bool = False) -> dict:
        """Returns ``dict(inputs=dict(scores, mask, index, feats, bboxes),
        data_samples)``."""
        data = self.cast_data(data)
        cols = self._columns(data['inputs'])
        if 'scores' not in cols:
            raise ValueError('slide bag inputs need "scores"')
        inputs = pad_slide_bags(cols['scores'], cols.get('feats'),
                                cols.get('bboxes'), self.top_k)
        return dict(inputs=inputs, data_samples=data.get('data_samples'))


__all__ = ['SlideBagDataPreprocessor', 'pad_slide_bags']
