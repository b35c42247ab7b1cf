"""Load an ROI's cached cell features (``tools/roi_cls/extract_cell_features.py``)."""
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

#: Largest difference (pixels) between the cached and the sample's boxes.
BOX_ATOL: float = 1e-2
_FIX = ('rerun tools/roi_cls/extract_cell_features.py CONFIG --split <split> '
        '(add --force-overwrite to replace stale caches)')


def check_cache_boxes(cached: np.ndarray, boxes: np.ndarray,
                      atol: float = BOX_ATOL) -> bool:
    """Whether a cache's ``boxes`` [N, 4] equal the sample's (within ``atol``)."""
    cached = np.asarray(cached, dtype=np.float32).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return cached.shape == boxes.shape and bool(
        np.allclose(cached, boxes, rtol=0., atol=atol))


@TRANSFORMS.register_module()
class LoadCellFeatures(BaseTransform):
    """Load the cached features of the cells of an ROI.

    The cache is one ``.npz`` per ROI holding ``pooled`` ``[N, C]``,
    optionally ``maps`` ``[N, C, h, w]`` (float16 or float32) and the
    ``boxes`` ``[N, 4]`` they were computed on.

    Required keys: ``cache_path`` (set by ``ROIBagDataset(feature_cache=...)``),
    ``cell_bboxes`` float32 ``[N, 4]``.

    Added keys: ``cell_pooled`` float32 ``[N, C]`` (key ``'pooled'``),
    ``cell_maps`` float32 ``[N, C, h, w]`` (key ``'maps'``).

    Args:
        keys (Sequence[str]): Arrays to load: ``('pooled', 'maps')``
            (default) or ``('pooled', )`` (models without the local branch).
    """

    def __init__(self, keys: Sequence[str] = ('pooled', 'maps')) -> None:
        keys = tuple(keys)
        bad = set(keys) - {'pooled', 'maps'}
        if bad or 'pooled' not in keys:
            raise ValueError(f"LoadCellFeatures: keys must be ('pooled', ) "
                             f"or ('pooled', 'maps'), got {keys}")
        self.keys = keys

    def transform(self, results: dict) -> Optional[dict]:
        """Read the npz at ``results['cache_path']``."""
        path = results.get('cache_path')
        if not path:
            raise KeyError(
                'LoadCellFeatures needs results["cache_path"]: set '
                'feature_cache=<folder> in the ROIBagDataset config '
                f'(img_path {results.get("img_path")})')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'LoadCellFeatures: no feature cache {path} for ROI '
                f'{results.get("img_path")}; {_FIX}')
        with np.load(path) as data:
            if 'boxes' not in data or not check_cache_boxes(
                    data['boxes'], results['cell_bboxes']):
                n = len(data['boxes']) if 'boxes' in data else '?'
                raise ValueError(
                    f'LoadCellFeatures: cache {path} is stale (its {n} boxes '
                    f'differ from the {len(results["cell_bboxes"])} cells of '
                    f'{results.get("img_path")}): {_FIX}')
            for key in self.keys:
                if key not in data:
                    raise KeyError(
                        f'LoadCellFeatures: cache {path} has no {key!r} '
                        f'(it holds {sorted(data.files)}); drop {key!r} from '
                        'keys or rerun the extraction without --no-maps')
                results[f'cell_{key}'] = data[key].astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys})'


__all__ = ['LoadCellFeatures', 'check_cache_boxes']
