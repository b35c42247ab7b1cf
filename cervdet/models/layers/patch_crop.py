"""Cut square patches around boxes out of a batch of images, in memory.

Used twice with the same code, so the Patch Correction Network (PCN) sees the
same kind of patch in training (stage 2, ``build_pcn_patches.py`` writes them
to disk once) and during distillation (stage 3, crops of the detector's input
batch, no disk I/O):

- :func:`patch_regions` turns boxes into patch regions (context, squaring);
- :func:`crop_patches` resamples all regions of a batch at once with RoIAlign
  (bilinear, anti-aliased by averaging several samples per output pixel when a
  region is larger than the output);
- :func:`~cervdet.models.utils.convert_normalization` then converts crops
  of a detector's normalised input into the normalisation (and channel
  order) of the PCN's data preprocessor.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torchvision.ops import roi_align


def patch_regions(boxes: Tensor, scale: float = 1.0, square: bool = False,
                  min_size: float = 0.) -> Tensor:
    """Patch regions centred on boxes.

    Each side becomes ``max(scale * side, min_size)``; with ``square`` both
    sides become the larger of the two (the patch is resized to a square
    input, so a square region keeps the cell's aspect ratio). Examples:
    ``scale=1, square=False`` is the box itself; ``scale=0, min_size=256,
    square=True`` is a fixed 256-px window centred on the box (the official
    code's local patch at 1024 px).

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` in pixels.
        scale (float): Context factor applied to the box sides.
        square (bool): Make the regions square.
        min_size (float): Smallest side of a region in pixels.

    Returns:
        Tensor[N, 4]: Regions ``(x1, y1, x2, y2)``; they may extend past the
        image border (:func:`crop_patches` fills outside pixels).
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f'boxes must be Tensor[N, 4], got {tuple(boxes.shape)}')
    ctr = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0) * scale
    wh = wh.clamp(min=min_size)
    if square:
        wh = wh.max(dim=1, keepdim=True).values.expand(-1, 2)
    return torch.cat([ctr - wh * 0.5, ctr + wh * 0.5], dim=1)


def crop_patches(images: Tensor, rois: Tensor,
                 out_size: Union[int, Tuple[int, int]] = 224,
                 fill: Optional[Union[float, Sequence[float], Tensor]] = None
                 ) -> Tensor:
    """Crop and resize many regions of a batch of images in one call.

    Pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]`` (``aligned=True``): a region
    ``(x1, y1, x2, y2)`` samples output column ``c`` at
    ``x = x1 + (c + 0.5) * (x2 - x1) / out_w`` (pixel centres at ``j + 0.5``).
    Regions larger than the output are averaged over
    ``ceil(side / out)`` bilinear samples per output pixel and axis.

    Args:
        images (Tensor[B, C, H, W]): Float images (raw or normalised).
        rois (Tensor[N, 5]): ``(batch_index, x1, y1, x2, y2)`` per region.
        out_size (int | tuple[int, int]): Output ``(h, w)`` (or side).
        fill (float | Sequence[float] | Tensor[C], optional): Value of pixels
            outside the image; ``None`` means 0.

    Returns:
        Tensor[N, C, out_h, out_w]: The patches, in the order of ``rois``.
    """
    if images.dim() != 4:
        raise ValueError('images must be Tensor[B, C, H, W], got '
                         f'{tuple(images.shape)}')
    if rois.dim() != 2 or rois.shape[-1] != 5:
        raise ValueError(f'rois must be Tensor[N, 5], got {tuple(rois.shape)}')
    if isinstance(out_size, int):
        out_size = (out_size, out_size)
    images = images.float()
    rois = rois.to(images)
    if rois.shape[0] == 0:
        return images.new_zeros((0, images.shape[1], *out_size))
    if fill is None:
        return roi_align(images, rois, out_size, spatial_scale=1.0,
                         sampling_ratio=-1, aligned=True)
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    fill_t = fill_t.reshape(1, -1, 1, 1)
    # RoIAlign returns 0 outside the image: shift so that 0 means ``fill``.
    return roi_align(images - fill_t, rois, out_size, spatial_scale=1.0,
                     sampling_ratio=-1, aligned=True) + fill_t


__all__ = ['patch_regions', 'crop_patches']
