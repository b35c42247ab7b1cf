"""Global-local attention ROI classifier of Shi et al., "Global-local
attention network for weakly supervised cervical cytology ROI analysis"
(ISBI 2022), and its Table 1 baselines.

An ROI (1024-2048 px) is a bag of cells with an ROI-level label only:

1. cell features: a (frozen) CNN ``cell_encoder`` on every 224 px cell crop
   gives the stage-4 map (``maps`` Tensor[C, h, w]) and its global average
   (``pooled`` Tensor[C]); or both come from a feature cache;
2. global branch (``global_branch``): :class:`AttBLSTM` over the pooled
   sequence -> ``h_ROI`` and an attention over cells (baselines:
   :class:`GatedAttentionMIL`, :class:`RNNAggregator`);
3. local branch (``local_branch``, optional): :class:`CellViT` on every
   cell's map -> ``y_i``;
4. cross attention (``cross_attention``, optional, needs the local branch):
   :class:`ROICrossAttention` -> ``h~ = h_ROI + a`` and the CA scores; a
   linear layer classifies ``h~`` (or ``h_ROI``) with cross-entropy
   (``loss_roi``);
5. cell branches (``cell_branches``, optional): ``C`` binary classifiers on
   every cell's feature. The paper puts them on the local features; we use
   ``y_i`` when the local branch exists, else the cell's pooled feature. The
   detached CA scores (the global attention without cross attention) pick
   pseudo positives / negatives (:func:`cell_pseudo_targets`, the paper's
   sample rules 1-3 of Sec. 2.4 with ``rule='shi'``); ``loss_cell`` is
   ``(L_NILM + L_LSIL + L_HSIL) / 3`` of the class-specific
   cross-entropies (:func:`cell_branch_loss`), weighted by ``loss_weight``
   (lambda = 0.25, Sec. 3): ``L = L_ROI + 0.25 L_cell``.

``predict`` gives, per ROI, ``pred_score`` (softmax) / ``pred_label`` and
the fields ``cell_attention`` Tensor[N] (CA scores, else the global
attention, else uniform for attention-free baselines; sums to 1),
``cell_scores`` Tensor[N, C] (positive probability of every in-class branch)
and ``cell_pred_labels`` Tensor[N] (argmax of ``cell_scores``) when the
model has cell branches.

Usage (a cached-feature config, CPU-sized)::

    model = dict(
        type='GlobalLocalROIClassifier',
        data_preprocessor=dict(type='ROIBagDataPreprocessor'),
        global_branch=dict(type='AttBLSTM', in_channels=2048,
                           hidden_size=512),
        local_branch=dict(type='CellViT', in_channels=2048, embed_dims=768,
                          depth=2),
        cross_attention=dict(type='ROICrossAttention', d_k=1024),
        num_classes=3, class_names=['NILM', 'LSIL', 'HSIL'],
        cell_branches=dict(ratio=0.1, rule='shi', loss_weight=0.25))
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..layers.cell_pseudo_labels import (
    bethesda_severity,
    cell_branch_loss,
    cell_pseudo_targets,
)
from ..utils import pool_backbone_output
from .base_bag_classifier import BaseBagClassifier
from .base_bag_classifier import build_mmpretrain_module as _build


def scatter_valid(values: Tensor, mask: Tensor) -> Tensor:
    """Put per-valid-cell values back into a padded batch.

    Args:
        values (Tensor[M, ...]): Values of the valid cells, in
            ``mask.nonzero()`` (row-major) order.
        mask (Tensor[B, N]): bool, ``M`` True entries.

    Returns:
        Tensor[B, N, ...]: ``values`` at the valid positions, 0 elsewhere
        (differentiable w.r.t. ``values``).
    """
    out = values.new_zeros((*mask.shape, *values.shape[1:]))
    return out.index_put((mask, ), values)


@MODELS.register_module()
class GlobalLocalROIClassifier(BaseBagClassifier):
    """ROI classifier from cell bags with global, local and cell branches.

    Args:
        global_branch (dict): Config of the cell aggregator
            (``AttBLSTM`` / ``GatedAttentionMIL`` / ``RNNAggregator``):
            ``(feats Tensor[B, N, C], mask) -> (h Tensor[B, D], attention
            Tensor[B, N] | None)`` with an ``out_channels`` attribute.
        num_classes (int): Number of ROI classes ``C``.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='ROIBagDataPreprocessor')``.
        cell_encoder (dict, optional): mmpretrain backbone config for pixel
            mode (e.g. ``ResNet`` depth 50, ``out_indices=(3, )``); its last
            output is the stage-4 map. None for cached features only.
        freeze_cell_encoder (bool): Keep the encoder frozen (eval mode,
            ``no_grad``, parameters without gradients). Defaults to True.
        local_branch (dict, optional): ``CellViT`` config; needs ``maps``.
        cross_attention (dict, optional): ``ROICrossAttention`` config;
            needs ``local_branch``. ``query_channels`` / ``key_channels``
            default to the branches' widths.
        class_names (Sequence[str], optional): ROI class names (needed by
            ``rule='shi'`` / ``'bethesda_onehot'``).
        cell_branches (dict, optional): ``dict(ratio=0.1, rule='shi',
            loss_weight=0.25, branch_average='all')`` (the paper's Sec. 2.4
            and 3: N = 10 % of the cells, sample rules 1-3, ``L_cell =
            (L_NILM + L_LSIL + L_HSIL) / 3``, lambda 0.25); None disables
            the cell branches.
        loss_roi (dict): ROI loss config (mmpretrain ``CrossEntropyLoss``).
        encoder_chunk (int): Cells per encoder forward in pixel mode (bounds
            memory). Defaults to 256.
        head_dropout (float): Dropout before the ROI classifier.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 global_branch: dict,
                 num_classes: int,
                 data_preprocessor: Optional[dict] = None,
                 cell_encoder: Optional[dict] = None,
                 freeze_cell_encoder: bool = True,
                 local_branch: Optional[dict] = None,
                 cross_attention: Optional[dict] = None,
                 class_names: Optional[Sequence[str]] = None,
                 cell_branches: Optional[dict] = None,
                 loss_roi: dict = dict(
                     type='CrossEntropyLoss', loss_weight=1.0),
                 encoder_chunk: int = 256,
                 head_dropout: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ROIBagDataPreprocessor')
        super().__init__(
            init_cfg=init_cfg, data_preprocessor=_build(data_preprocessor))
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2; got {num_classes}')
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else None
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f'class_names {self.class_names} must list '
                             f'num_classes={self.num_classes} classes')
        if encoder_chunk < 1:
            raise ValueError(f'encoder_chunk must be >= 1; got '
                             f'{encoder_chunk}')
        self.encoder_chunk = int(encoder_chunk)

        self.freeze_cell_encoder = bool(freeze_cell_encoder)
        self.cell_encoder = _build(cell_encoder) if cell_encoder else None
        if self.cell_encoder is not None and self.freeze_cell_encoder:
            for p in self.cell_encoder.parameters():
                p.requires_grad_(False)

        self.global_branch = _build(global_branch)
        self.local_branch = _build(local_branch) if local_branch else None
        if cross_attention is not None:
            if self.local_branch is None:
                raise ValueError('cross_attention needs a local_branch (the '
                                 'keys / values are the cells\' local '
                                 'features y): set local_branch=dict('
                                 "type='CellViT', ...) or "
                                 'cross_attention=None')
            if isinstance(cross_attention, dict):
                cross_attention = dict(cross_attention)
                cross_attention.setdefault('query_channels',
                                           self.global_branch.out_channels)
                cross_attention.setdefault('key_channels',
                                           self.local_branch.out_channels)
            self.cross_attention = _build(cross_attention)
            if self.cross_attention.out_channels != \
                    self.global_branch.out_channels:
                raise ValueError(
                    'cross_attention.query_channels '
                    f'({self.cross_attention.out_channels}) must equal the '
                    'global branch\'s out_channels '
                    f'({self.global_branch.out_channels})')
        else:
            self.cross_attention = None

        self.head = nn.Sequential(
            nn.Dropout(head_dropout),
            nn.Linear(self.global_branch.out_channels, self.num_classes))
        self.loss_roi = _build(loss_roi)

        self.cell_cfg = None
        self.cell_head = None
        if cell_branches is not None:
            cfg = dict(ratio=0.1, rule='shi', loss_weight=0.25,
                       branch_average='all')
            cfg.update(cell_branches)
            unknown = set(cfg) - {'ratio', 'rule', 'loss_weight',
                                  'branch_average'}
            if unknown:
                raise ValueError(f'unknown cell_branches keys {unknown}; use '
                                 'ratio, rule, loss_weight, branch_average')
            if cfg['rule'] in ('shi', 'bethesda_onehot'):
                if self.class_names is None:
                    raise ValueError(
                        f"cell_branches rule={cfg['rule']!r} needs "
                        "class_names (['NILM', 'LSIL', 'HSIL']); set "
                        "class_names or use rule='clam'")
                bethesda_severity(self.class_names, cfg['rule'])
            if self.cross_attention is None and \
                    not getattr(self.global_branch, 'has_attention', True):
                raise ValueError(
                    'cell_branches need attention scores to pick pseudo '
                    f'labels; {type(self.global_branch).__name__} has none: '
                    'use cross_attention, an attention global branch or '
                    'cell_branches=None')
            self.cell_cfg = cfg
            cell_in = (self.local_branch.out_channels
                       if self.local_branch is not None else None)
            # pooled width is only known from the data when there is no
            # local branch: take the global branch's declared input width
            if cell_in is None:
                cell_in = getattr(self.global_branch, 'in_channels', None)
                if cell_in is None:
                    raise ValueError('cannot infer the cell feature width '
                                     'for the cell branches: give the '
                                     'global branch an in_channels')
            # C binary (negative, positive) classifiers in one linear layer
            self.cell_head = nn.Linear(cell_in, 2 * self.num_classes)

    # ------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'GlobalLocalROIClassifier':
        """Keep a frozen cell encoder in eval mode (BN statistics fixed)."""
        super().train(mode)
        if self.cell_encoder is not None and self.freeze_cell_encoder:
            self.cell_encoder.eval()
        return self

    def _encode(self, cells: Tensor) -> Tensor:
        """Stage-4 maps of valid cells, chunked.

        Args:
            cells (Tensor[M, 3, S, S]): Normalised crops of valid cells.

        Returns:
            Tensor[M, C, h, w]
        """
        outs = []
        for chunk in cells.split(self.encoder_chunk):
            with torch.set_grad_enabled(torch.is_grad_enabled()
                                        and not self.freeze_cell_encoder):
                feat = self.cell_encoder(chunk)
            if isinstance(feat, (tuple, list)):
                feat = feat[-1]
            outs.append(feat)
        return torch.cat(outs)

    def extract_cells(self, inputs: dict) -> Tuple[Tensor, Optional[Tensor],
                                                   Tensor]:
        """Cell features from pixels or from the cache.

        Args:
            inputs (dict): From :class:`ROIBagDataPreprocessor`: ``mask``
                Tensor[B, N] and ``cells`` Tensor[B, N, 3, S, S] (pixel
                mode) or ``pooled`` Tensor[B, N, C] (+ ``maps``
                Tensor[B, N, C, h, w]).

        Returns:
            tuple: ``pooled`` Tensor[B, N, C] (0 on padding), ``maps`` of
            the valid cells Tensor[M, C, h, w] (None when not available)
            and ``mask`` Tensor[B, N] bool.
        """
        if not isinstance(inputs, dict) or 'mask' not in inputs:
            raise ValueError('GlobalLocalROIClassifier expects inputs=dict('
                             'cells|pooled=..., mask=...) from '
                             'ROIBagDataPreprocessor; got '
                             f'{type(inputs).__name__}')
        mask = inputs['mask'].bool()
        if 'cells' in inputs:
            if self.cell_encoder is None:
                raise ValueError('pixel-mode inputs (cells) need a '
                                 'cell_encoder in the model config (or use '
                                 'cached features)')
            maps = self._encode(inputs['cells'][mask])  # [M, C, h, w]
            pooled = scatter_valid(pool_backbone_output(maps), mask)
            return pooled, maps, mask
        if 'pooled' not in inputs:
            raise ValueError('inputs need "cells" (pixel mode) or "pooled" '
                             f'(cached mode); got keys {sorted(inputs)}')
        pooled = inputs['pooled'].masked_fill(~mask[..., None], 0.)
        maps = inputs['maps'][mask] if 'maps' in inputs else None
        return pooled, maps, mask

    def _forward_all(self, inputs: dict) -> Dict[str, Optional[Tensor]]:
        """Run every branch.

        Returns:
            dict: ``logits`` Tensor[B, C], ``mask``, ``attention``
            Tensor[B, N] | None (CA scores, else global attention) and
            ``cell_logits`` Tensor[B, N, C, 2] | None.
        """
        pooled, maps, mask = self.extract_cells(inputs)
        h_roi, attention = self.global_branch(pooled, mask)
        y = None
        if self.local_branch is not None:
            if maps is None:
                raise ValueError(
                    'the local branch needs the cells\' stage-4 maps: '
                    'extract the feature cache with maps (or use pixel '
                    'mode), or set local_branch=None in the config')
            y = scatter_valid(self.local_branch(maps), mask)  # [B, N, D]
        if self.cross_attention is not None:
            h_roi, attention = self.cross_attention(h_roi, y, mask)
        logits = self.head(h_roi)
        cell_logits = None
        if self.cell_head is not None:
            cell_feats = y if y is not None else pooled
            b, n = mask.shape
            cell_logits = self.cell_head(cell_feats).view(
                b, n, self.num_classes, 2)
        return dict(
            logits=logits,
            mask=mask,
            attention=attention,
            cell_logits=cell_logits)

    @staticmethod
    def _gt_labels(data_samples: List[DataSample], device) -> Tensor:
        if data_samples is None or any('gt_label' not in s
                                       for s in data_samples):
            raise ValueError('loss mode needs data samples with gt_label '
                             '(the ROI class index)')
        return torch.cat([s.gt_label.view(-1)[:1] for s in data_samples
                          ]).long().to(device)

    def _forward_tensor(self, inputs: dict) -> Tensor:
        """``mode='tensor'``: the ROI logits Tensor[B, C]."""
        return self._forward_all(inputs)['logits']

    def loss(self, inputs: dict,
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """``loss_roi`` (cross-entropy of the ROI class) and, with cell
        branches, ``loss_cell`` (already multiplied by its loss weight).

        Returns:
            dict[str, Tensor]
        """
        out = self._forward_all(inputs)
        labels = self._gt_labels(data_samples, out['logits'].device)
        losses = dict(loss_roi=self.loss_roi(out['logits'], labels))
        if out['cell_logits'] is not None:
            targets = cell_pseudo_targets(
                out['attention'].detach(),
                out['mask'],
                labels,
                self.num_classes,
                ratio=self.cell_cfg['ratio'],
                rule=self.cell_cfg['rule'],
                class_names=self.class_names)
            losses['loss_cell'] = self.cell_cfg['loss_weight'] * \
                cell_branch_loss(out['cell_logits'], targets,
                                 self.cell_cfg['branch_average'])
        return losses

    @torch.no_grad()
    def predict(self,
                inputs: dict,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Predictions per ROI (see the module docstring)."""
        out = self._forward_all(inputs)
        mask = out['mask']
        scores = torch.softmax(out['logits'], dim=1)
        attention = out['attention']
        if attention is None:  # attention-free baselines: uniform
            attention = mask.float() / mask.sum(dim=1, keepdim=True).float()
        cell_scores = None
        if out['cell_logits'] is not None:
            cell_scores = torch.softmax(out['cell_logits'], dim=-1)[..., 1]
        if data_samples is None:
            data_samples = [DataSample() for _ in range(mask.shape[0])]
        # one DataSample per ROI: a loop over the batch is unavoidable here
        for i, sample in enumerate(data_samples):
            valid = mask[i]
            sample.set_pred_score(scores[i]).set_pred_label(
                scores[i].argmax())
            sample.set_field(attention[i][valid], 'cell_attention')
            if cell_scores is not None:
                cs = cell_scores[i][valid]
                sample.set_field(cs, 'cell_scores')
                sample.set_field(cs.argmax(dim=1), 'cell_pred_labels')
        return data_samples


__all__ = ['GlobalLocalROIClassifier', 'scatter_valid']
