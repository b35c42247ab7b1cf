"""Pack one ROI (a bag of cells) into ``inputs`` and a ``DataSample``."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS
from mmpretrain.structures import DataSample


@TRANSFORMS.register_module()
class PackROIBagInputs(BaseTransform):
    """Pack an ROI for ``ROIBagDataPreprocessor`` (collated by
    ``pseudo_collate``).

    Pixel mode (``cell_imgs`` present, from :class:`CropCells`): ``inputs``
    is a ``torch.uint8`` ``Tensor[N, 3, S, S]`` in the channel order of the
    loaded image (BGR with ``LoadImageFromFile``: set ``to_rgb=True`` in the
    data preprocessor). Cached mode (from :class:`LoadCellFeatures`):
    ``inputs`` is ``{'pooled': Tensor[N, C] float32, 'maps': Tensor[N, C, h,
    w] float32}`` (``maps`` only when loaded).

    ``data_samples`` is a ``mmpretrain.structures.DataSample`` with
    ``gt_label`` (ROI class index; not set for unlabelled ROIs, label -1),
    data fields ``cell_bboxes`` ``Tensor[N, 4]`` float xyxy and
    ``cell_labels`` ``Tensor[N]`` long (ROI class space, -1 = unknown), plus
    ``cell_det_scores`` ``Tensor[N]`` when the cells are detections, and the
    metainfo ``meta_keys`` (``num_cells`` is always set).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'img_path', 'img_id', 'ori_shape', 'num_cells', 'sample_idx',
            'cache_path')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> Optional[dict]:
        """Build ``dict(inputs=..., data_samples=DataSample)``."""
        where = results.get('img_path', results.get('cache_path'))
        if 'cell_imgs' in results:
            imgs = np.asarray(results['cell_imgs'])
            if imgs.ndim != 4:
                raise ValueError(f'PackROIBagInputs: cell_imgs of {where} '
                                 f'must be [N, 3, S, S], got {imgs.shape}')
            inputs = torch.from_numpy(np.ascontiguousarray(imgs))
        elif 'cell_pooled' in results or 'cell_maps' in results:
            inputs = {}
            for key in ('pooled', 'maps'):
                if f'cell_{key}' in results:
                    inputs[key] = torch.from_numpy(np.ascontiguousarray(
                        results[f'cell_{key}'], dtype=np.float32))
        else:
            raise KeyError(
                f'PackROIBagInputs: no cell_imgs (pixel mode: '
                'LoadImageFromFile + CropCells) nor cell_pooled/cell_maps '
                f'(cached mode: LoadCellFeatures) for {where}')
        n = len(inputs) if isinstance(inputs, torch.Tensor) else \
            len(next(iter(inputs.values())))
        boxes = np.asarray(results['cell_bboxes'], np.float32).reshape(-1, 4)
        if len(boxes) != n:
            raise ValueError(f'PackROIBagInputs: {n} cell inputs but '
                             f'{len(boxes)} cell_bboxes for {where}')
        sample = DataSample()
        label = int(results.get('roi_label', results.get('gt_label', -1)))
        if label >= 0:
            sample.set_gt_label(label)
        sample.set_field(torch.from_numpy(boxes), 'cell_bboxes',
                         field_type='data')
        labels = results.get('cell_labels')
        labels = -np.ones(n, np.int64) if labels is None else labels
        sample.set_field(torch.as_tensor(np.asarray(labels, np.int64)),
                         'cell_labels', field_type='data')
        if 'cell_scores' in results:
            sample.set_field(torch.as_tensor(np.asarray(
                results['cell_scores'], np.float32)), 'cell_det_scores',
                field_type='data')
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta['num_cells'] = int(n)
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


__all__ = ['PackROIBagInputs']
