"""What the settings of the synthetic image builds share: the mosaics of
:mod:`cervdet.datasets.synthesis` (:class:`MosaicConfig`) and the composed ROI
sets of :mod:`cervdet.datasets.roi_sets` (:class:`ROISetConfig`).

Both start from a preset, take the command line's overrides (``None`` keeps
the preset) and check the settings they have in common; the messages name
the command line flags (``--cells-per-image``, ``--crop-scale``...).
"""
from typing import Any, Dict, Mapping, Sequence


def apply_overrides(values: Dict[str, Any], overrides: Mapping[str, Any],
                    tuple_keys: Sequence[str]) -> Dict[str, Any]:
    """Overrides on top of preset values.

    Args:
        values (dict): The preset's values (updated in place).
        overrides (Mapping): Field -> value; ``None`` values are ignored
            (argparse defaults of ``None`` keep the preset).
        tuple_keys (Sequence[str]): Fields made tuples (argparse gives
            lists).

    Returns:
        dict: ``values``.
    """
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in tuple_keys:
        if key in values:
            values[key] = tuple(values[key])
    return values


def check_common_settings(cfg: Any, cells_field: str) -> None:
    """Raise ``ValueError`` with the flag to fix for the settings every build
    has: the cell count range, ``split_ratios``, ``crop_scale``,
    ``background`` and ``num_train`` / ``num_val`` / ``num_test``.

    Args:
        cfg (MosaicConfig | ROISetConfig): The settings.
        cells_field (str): Field of the ``(min, max)`` cells per image
            (``'cells_per_image'`` or ``'cells_per_roi'``).
    """
    lo, hi = getattr(cfg, cells_field)
    if not 1 <= lo <= hi:
        flag = '--' + cells_field.replace('_', '-')
        raise ValueError(f'{flag} needs 1 <= MIN <= MAX, got {lo} {hi}')
    if len(cfg.split_ratios) != 3 or min(cfg.split_ratios) <= 0:
        raise ValueError('--split-ratios needs three positive numbers, e.g. '
                         f'0.7 0.15 0.15; got {cfg.split_ratios}')
    if not 0 < cfg.crop_scale[0] <= cfg.crop_scale[1]:
        raise ValueError(f'--crop-scale needs 0 < LO <= HI, got {cfg.crop_scale}')
    if cfg.background not in ('field', 'paper'):
        raise ValueError(f'--background must be field or paper, got '
                         f'{cfg.background!r}')
    if min(cfg.num_train, cfg.num_val, cfg.num_test) < 0:
        raise ValueError('--num-train/--num-val/--num-test must be >= 0')


__all__ = ['apply_overrides', 'check_common_settings']
