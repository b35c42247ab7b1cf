"""Read a data preprocessor's input normalisation, and convert between two.

MMEngine's ``ImgDataPreprocessor`` (and mmdet's ``DetDataPreprocessor``,
mmpretrain's ``SelfSupDataPreprocessor``) and mmpretrain's
``ClsDataPreprocessor`` keep their normalisation in attributes that are not
public API and differ between them: ``_enable_normalize`` (both), the
``mean`` / ``std`` buffers ``Tensor[C, 1, 1]`` (both, when normalising),
``_channel_conversion`` (MMEngine: BGR <-> RGB) or ``to_rgb`` (mmpretrain's
``ClsDataPreprocessor``, cervdet's ``ROIBagDataPreprocessor``).
:func:`preprocessor_normalization` is the one place that reads them; models
compare (:func:`same_normalization`) and convert
(:func:`convert_normalization`) inputs through the returned
:class:`InputNormalization`.

Images are loaded BGR (mmcv); a preprocessor that converts channels feeds
its model RGB.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor


class InputNormalization(NamedTuple):
    """What a data preprocessor does to the pixels of a loaded image.

    Attributes:
        mean (Tensor | None): ``Tensor[C]`` subtracted (in the model's
            channel order), None when the preprocessor does not normalise.
        std (Tensor | None): ``Tensor[C]`` divided by, None likewise.
        to_rgb (bool): The BGR-loaded image is flipped to RGB.
    """

    mean: Optional[Tensor]
    std: Optional[Tensor]
    to_rgb: bool

    @property
    def enabled(self) -> bool:
        """Whether pixels are normalised (``mean`` / ``std`` set)."""
        return self.mean is not None

    def mean_std(self, channels: int = 3, like: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Tensor]:
        """``(mean, std)`` as ``Tensor[C]``; zeros / ones when disabled.

        Args:
            channels (int): ``C`` when the normalisation is disabled.
            like (Tensor, optional): Device and dtype of the result when
                disabled (defaults: CPU float32).
        """
        if self.enabled:
            return self.mean, self.std
        if like is None:
            return torch.zeros(channels), torch.ones(channels)
        return like.new_zeros(channels), like.new_ones(channels)


def preprocessor_normalization(preprocessor: nn.Module) -> InputNormalization:
    """The input normalisation of a data preprocessor.

    Args:
        preprocessor (nn.Module): An MMEngine ``ImgDataPreprocessor``
            subclass (mmdet ``DetDataPreprocessor``, mmpretrain
            ``SelfSupDataPreprocessor``), an mmpretrain
            ``ClsDataPreprocessor`` or any module with the same attributes
            (cervdet's ``ROIBagDataPreprocessor``).

    Returns:
        InputNormalization: ``mean`` / ``std`` ``Tensor[C]`` (views of the
        preprocessor's buffers, on its device) or None, and ``to_rgb``.
    """
    enabled = bool(getattr(preprocessor, '_enable_normalize', False))
    mean = getattr(preprocessor, 'mean', None) if enabled else None
    std = getattr(preprocessor, 'std', None) if enabled else None
    if hasattr(preprocessor, '_channel_conversion'):
        to_rgb = bool(preprocessor._channel_conversion)
    else:
        to_rgb = bool(getattr(preprocessor, 'to_rgb', False))
    if mean is None or std is None:
        return InputNormalization(None, None, to_rgb)
    return InputNormalization(mean.reshape(-1), std.reshape(-1), to_rgb)


def same_normalization(a: InputNormalization, b: InputNormalization) -> bool:
    """Whether two preprocessors give the same input for one image."""
    if a.enabled != b.enabled or a.to_rgb != b.to_rgb:
        return False
    if not a.enabled:
        return True
    return bool(
        a.mean.shape == b.mean.shape and a.std.shape == b.std.shape
        and torch.allclose(a.mean, b.mean.to(a.mean))
        and torch.allclose(a.std, b.std.to(a.std)))


def normalization_transfer(src_mean: Tensor, src_std: Tensor, src_rgb: bool,
                           dst_mean: Tensor, dst_std: Tensor, dst_rgb: bool
                           ) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-channel affine map from one input normalisation to another.

    A pixel normalised as ``x_src = (raw - src_mean) / src_std`` (in the
    source channel order) becomes ``x_dst = (raw' - dst_mean) / dst_std``
    with ``raw'`` the raw pixel in the destination order:
    ``x_dst = x_src[perm] * scale + shift``.

    Args:
        src_mean (Tensor[C]): Source mean (source channel order).
        src_std (Tensor[C]): Source std.
        src_rgb (bool): Source channels are RGB (else BGR).
        dst_mean (Tensor[C]): Destination mean (destination channel order).
        dst_std (Tensor[C]): Destination std.
        dst_rgb (bool): Destination channels are RGB (else BGR).

    Returns:
        tuple: ``(perm, scale, shift)``: ``perm`` Tensor[C] (long) indexes the
        source channels, ``scale`` and ``shift`` are Tensor[C].
    """
    src_mean, src_std = src_mean.reshape(-1).float(), src_std.reshape(-1).float()
    dst_mean, dst_std = dst_mean.reshape(-1).float(), dst_std.reshape(-1).float()
    c = src_mean.numel()
    perm = torch.arange(c, device=src_mean.device)
    if src_rgb != dst_rgb:
        if c != 3:
            raise ValueError('RGB <-> BGR conversion needs 3 channels, got '
                             f'{c}')
        perm = perm.flip(0)
    scale = src_std[perm] / dst_std
    shift = (src_mean[perm] - dst_mean) / dst_std
    return perm, scale, shift


def transfer_normalization(x: Tensor, perm: Tensor, scale: Tensor,
                           shift: Tensor) -> Tensor:
    """Apply :func:`normalization_transfer`'s map to ``Tensor[N, C, H, W]``."""
    return x[:, perm] * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def convert_normalization(x: Tensor, src: InputNormalization,
                          dst: InputNormalization) -> Tensor:
    """A batch normalised by one preprocessor, as another would give it.

    Args:
        x (Tensor): ``Tensor[N, C, H, W]``, pixels as ``src`` feeds them
            to its model.
        src (InputNormalization): Normalisation of ``x``.
        dst (InputNormalization): Wanted normalisation.

    Returns:
        Tensor: ``Tensor[N, C, H, W]`` in ``dst``'s normalisation and
        channel order (``x`` itself when the two are the same).
    """
    if same_normalization(src, dst):
        return x
    c = x.shape[1]
    src_mean, src_std = src.mean_std(c, like=x)
    dst_mean, dst_std = dst.mean_std(c, like=x)
    perm, scale, shift = normalization_transfer(
        src_mean.to(x.device), src_std.to(x.device), src.to_rgb,
        dst_mean.to(x.device), dst_std.to(x.device), dst.to_rgb)
    return transfer_normalization(x, perm, scale.to(x), shift.to(x))


__all__ = [
    'InputNormalization', 'preprocessor_normalization', 'same_normalization',
    'normalization_transfer', 'transfer_normalization',
    'convert_normalization'
]
