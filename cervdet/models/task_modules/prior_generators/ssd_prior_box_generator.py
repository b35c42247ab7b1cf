"""SSD prior boxes with the scales of Eq. (4) of LD-WSCCD (Yin et al., IEEE
Access 2024, Sec. III.D.1.b), i.e. of the SSD paper (Liu et al., ECCV 2016,
Sec. 2.2 "Choosing scales and aspect ratios for default boxes").

mmdet's :class:`~mmdet.models.task_modules.SSDAnchorGenerator` builds its
sizes from integer percent steps and prepends a hand-set first level (4 % or
7 % of the input for SSD512), and refuses ``S_min = 0.2`` at 512 px; this
generator computes the sizes of Eq. (4) exactly and hands them to it.
"""
from typing import List, Sequence, Tuple, Union

from mmdet.models.task_modules.prior_generators import SSDAnchorGenerator
from mmdet.registry import TASK_UTILS


def ssd_prior_scales(s_min: float, s_max: float,
                     num_levels: int) -> List[float]:
    """Scales ``s_1 .. s_{m+1}`` of Eq. (4).

    ``s_k = S_min + (S_max - S_min) / (m - 1) * (k - 1)``, ``k = 1 .. m``
    (Eq. (4)); the extra square prior of level ``k`` has the scale
    ``s'_k = sqrt(s_k s_{k+1})``, which needs ``s_{m+1}``: the same formula
    one step further (``S_max + (S_max - S_min) / (m - 1)``), as in the SSD
    reference implementation (its last ``max_size`` exceeds the image).

    Args:
        s_min (float): ``S_min`` (0.2 in the paper).
        s_max (float): ``S_max`` (0.9 in the paper).
        num_levels (int): ``m``, the number of feature maps, >= 2.

    Returns:
        list[float]: ``m + 1`` scales, fractions of the input side.
    """
    if num_levels < 2:
        raise ValueError(
            f'Eq. (4) needs m >= 2 feature maps, got {num_levels}')
    if not 0. < s_min < s_max:
        raise ValueError(f'Eq. (4) needs 0 < S_min < S_max; got S_min={s_min}'
                         f', S_max={s_max}')
    step = (s_max - s_min) / (num_levels - 1)
    return [s_min + step * k for k in range(num_levels + 1)]


@TASK_UTILS.register_module()
class SSDPriorBoxGenerator(SSDAnchorGenerator):
    """SSD prior boxes whose scales follow Eq. (4) exactly.

    On level ``k`` (``f_k x f_k`` cells, stride ``input_size / f_k``), at
    the cell centres ``((i + 0.5) / f_k, (j + 0.5) / f_k)`` (in input
    pixels: ``(i + 0.5) * stride``): one square box of side ``s_k``, one of
    side ``s'_k = sqrt(s_k s_{k+1})``, and for every ratio ``a`` in
    ``ratios[k]`` the boxes ``w = s_k sqrt(a), h = s_k / sqrt(a)`` and
    their transposes (``1/a``), all in pixels (``s * input_size``). Order
    per cell as in mmdet's ``SSDAnchorGenerator``: ``s_k`` with ratios
    ``[1, 1/a_1, a_1, ...]``, then ``s'_k``.

    Args:
        strides (Sequence[int]): Stride of every level, e.g. SSD512's
            ``[8, 16, 32, 64, 128, 256, 512]``.
        ratios (Sequence[Sequence[float]]): Extra aspect ratios per level,
            e.g. ``[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]``.
        input_size (int): Side of the (square) network input in pixels.
        scale_range (tuple[float, float]): ``(S_min, S_max)`` of Eq. (4).
            Defaults to the paper's ``(0.2, 0.9)``.
        use_box_type (bool): Wrap priors in box structures. Defaults to
            False.
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[Sequence[float]],
                 input_size: int = 512,
                 scale_range: Tuple[float, float] = (0.2, 0.9),
                 use_box_type: bool = False) -> None:
        if len(strides) != len(ratios):
            raise ValueError(f'SSDPriorBoxGenerator: one ratio list per '
                             f'level; got {len(strides)} strides and '
                             f'{len(ratios)} ratio lists')
        scales = ssd_prior_scales(float(scale_range[0]),
                                  float(scale_range[1]), len(strides))
        self.input_size = input_size
        self.scale_range = tuple(scale_range)
        self.prior_scales = scales
        # Eq. (4): s_k in pixels; max_size gives s'_k = sqrt(s_k s_{k+1})
        min_sizes = [s * input_size for s in scales[:-1]]
        max_sizes = [s * input_size for s in scales[1:]]
        super().__init__(
            strides=strides,
            ratios=ratios,
            min_sizes=min_sizes,
            max_sizes=max_sizes,
            # mmdet's base-anchor selection (indices [0, R, 1, .., R-1])
            # picks s_k x every ratio and s'_k x ratio 1 only with the
            # ratio-major layout; scale_major=True would give s'_k boxes of
            # ratio a and drop s_k ones
            scale_major=False,
            use_box_type=use_box_type)

    def __repr__(self) -> str:
        sizes = ', '.join(f'{s * self.input_size:.1f}'
                          for s in self.prior_scales)
        return (f'{self.__class__.__name__}(strides={self.strides}, '
                f'scale_range={self.scale_range}, input_size='
                f'{self.input_size}, sizes_px=[{sizes}])')


__all__ = ['SSDPriorBoxGenerator', 'ssd_prior_scales']
