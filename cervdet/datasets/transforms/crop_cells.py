"""Crop every cell of an ROI to a fixed size in one vectorised call."""
from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS
from torchvision.ops import roi_align


def expand_boxes(boxes: np.ndarray, context: float) -> np.ndarray:
    """Grow xyxy boxes by ``context`` times their width/height on each side.

    Args:
        boxes (np.ndarray): float ``[N, 4]`` xyxy.
        context (float): Relative padding (0 = the box itself).

    Returns:
        np.ndarray: float32 ``[N, 4]`` xyxy.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    wh = boxes[:, 2:] - boxes[:, :2]
    pad = np.concatenate([wh, wh], axis=1) * float(context)
    return boxes + pad * np.array([-1, -1, 1, 1], dtype=np.float32)


def crop_and_resize(img: np.ndarray, boxes: np.ndarray, size: int,
                    pad_value: float = 0.) -> np.ndarray:
    """Crop ``boxes`` of an image and resize each to ``size x size``.

    One ``torchvision.ops.roi_align`` call (``aligned=True``: box corners are
    continuous pixel-edge coordinates, so a box ``[0, 0, w, h]`` of size
    ``(w, h) == (size, size)`` returns the pixels unchanged; adaptive
    sampling averages several samples per output pixel when shrinking).
    The image is first padded with ``pad_value`` as far as the boxes stick
    out, so parts of a box outside the image read ``pad_value``.

    Args:
        img (np.ndarray): uint8 ``[H, W, C]`` (channel order kept).
        boxes (np.ndarray): float ``[N, 4]`` xyxy in pixels.
        size (int): Output side ``S``.
        pad_value (float): Value outside the image.

    Returns:
        np.ndarray: uint8 ``[N, C, S, S]``.
    """
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0, c, size, size), np.uint8)
    over = np.array([-boxes[:, 0].min(), -boxes[:, 1].min(),
                     boxes[:, 2].max() - w, boxes[:, 3].max() - h])
    # +1: bilinear samples near the padded edge stay inside the padding
    margin = int(np.ceil(over.max())) + 1 if over.max() > 0 else 0
    tensor = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    tensor = tensor.float()[None]  # [1, C, H, W]
    if margin:
        tensor = torch.nn.functional.pad(
            tensor, (margin, margin, margin, margin), value=float(pad_value))
    rois = torch.zeros(len(boxes), 5)
    rois[:, 1:] = torch.from_numpy(boxes) + margin
    out = roi_align(tensor, rois, output_size=(size, size), spatial_scale=1.,
                    sampling_ratio=-1, aligned=True)  # [N, C, S, S]
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


@TRANSFORMS.register_module()
class CropCells(BaseTransform):
    """Crop each cell box of an ROI and resize it to ``size x size``.

    Required keys: ``img`` (uint8 ``[H, W, 3]``, BGR as loaded by
    ``LoadImageFromFile``), ``cell_bboxes`` (float32 ``[N, 4]`` xyxy).

    Added keys: ``cell_imgs`` (uint8 ``[N, 3, size, size]``, same channel
    order as ``img``), ``cell_size`` (int).

    Args:
        size (int): Side of the crops. Defaults to 224.
        context (float): Relative padding around each box (0.1 adds 10 % of
            the box width/height on each side). Defaults to 0.0.
        pad_value (float): Value of crop pixels outside the ROI. Defaults to 0.
        keep_img (bool): Keep ``img`` in the results (dropped by default: the
            crops are all the model needs). Defaults to False.
    """

    def __init__(self, size: int = 224, context: float = 0.0,
                 pad_value: float = 0., keep_img: bool = False) -> None:
        if int(size) < 1:
            raise ValueError(f'CropCells: size must be >= 1, got {size}')
        if context < 0:
            raise ValueError(f'CropCells: context must be >= 0, got {context}')
        self.size = int(size)
        self.context = float(context)
        self.pad_value = float(pad_value)
        self.keep_img = keep_img

    def transform(self, results: dict) -> Optional[dict]:
        """Write ``cell_imgs`` from ``img`` and ``cell_bboxes``."""
        for key in ('img', 'cell_bboxes'):
            if key not in results:
                raise KeyError(
                    f'CropCells needs results[{key!r}] (img_path '
                    f'{results.get("img_path")}); put LoadImageFromFile '
                    'before it and use ROIBagDataset')
        boxes = expand_boxes(results['cell_bboxes'], self.context)
        results['cell_imgs'] = crop_and_resize(results['img'], boxes,
                                               self.size, self.pad_value)
        results['cell_size'] = self.size
        if not self.keep_img:
            results.pop('img')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'context={self.context}, pad_value={self.pad_value})')


__all__ = ['CropCells', 'crop_and_resize', 'expand_boxes']
