"""Settings of a mosaic build: presets, :class:`MosaicConfig` and its checks."""
from dataclasses import dataclass
from typing import Dict, Tuple

from cervdet.datasets.build_settings import apply_overrides, check_common_settings
from cervdet.datasets.classes import BETHESDA_CLASSES, NORMAL_CLASS, TCT11_CLASSES

#: Defaults per ``--preset``; every key can be overridden on the command line.
PRESETS: Dict[str, Dict] = {
    '512': dict(img_size=512, cells_per_image=(6, 12), num_train=60,
                num_val=20, num_test=20, crop_scale=(0.7, 1.1),
                min_cell_size=24, max_cell_size=160),
    '1024': dict(img_size=1024, cells_per_image=(16, 32), num_train=240,
                 num_val=60, num_test=60, crop_scale=(1.0, 1.6),
                 min_cell_size=40, max_cell_size=320),
}


@dataclass
class MosaicConfig:
    """All settings of one mosaic build (written to ``meta.json``).

    Args:
        source (str): ``'bethesda'`` (CRIC abnormal crops) or ``'tct11'``
            (ComparisonDetector crops); normal cells always come from CRIC NILM.
        preset (str): Name of the preset the defaults came from.
        img_size (int): Side of the square output images in pixels.
        cells_per_image (tuple[int, int]): Min and max cells (abnormal +
            normal) per image, inclusive.
        abnormal_fraction (float): Share of the cells of a positive image
            that are abnormal (at least one).
        negative_fraction (float): Share of the images of each split with no
            abnormal cell (at least one per split when it has >= 2 images).
        num_train (int): Number of train images.
        num_val (int): Number of val images.
        num_test (int): Number of test images.
        split_ratios (tuple[float, float, float]): Share of each class's
            crops given to train/val/test.
        crop_scale (tuple[float, float]): Range of the random resize factor
            of a crop.
        min_cell_size (int): Smallest max-side of a pasted crop in pixels
            (tiny crops are upscaled to it).
        max_cell_size (int): Largest max-side of a pasted crop in pixels.
        max_overlap (float): Largest share of any cell's mask another cell
            may cover.
        min_crop_contrast (float): Abnormal crops (and normal ones when
            ``annotate_normal``) whose centre has no dark object of at least
            this contrast (see :func:`crop_contrast`) are not used (they show
            only glass or cytoplasm).
        background (str): ``'field'`` (quilted real blank glass) or
            ``'paper'`` (smooth paper-white of the field's blank colour).
        annotate_normal (bool): Also box normal cells as class ``NILM``.
        class_sampling (str): ``'uniform'`` (each abnormal class equally
            likely) or ``'proportional'`` (by number of crops).
        seed (int): Seed of every random choice.
        jpeg_quality (int): JPEG quality of the written images.
    """

    source: str = 'bethesda'
    preset: str = '512'
    img_size: int = 512
    cells_per_image: Tuple[int, int] = (6, 12)
    abnormal_fraction: float = 0.3
    negative_fraction: float = 0.2
    num_train: int = 60
    num_val: int = 20
    num_test: int = 20
    split_ratios: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    crop_scale: Tuple[float, float] = (0.7, 1.1)
    min_cell_size: int = 24
    max_cell_size: int = 160
    max_overlap: float = 0.1
    min_crop_contrast: float = 40.0
    background: str = 'field'
    annotate_normal: bool = False
    class_sampling: str = 'uniform'
    seed: int = 0
    jpeg_quality: int = 95

    def num_images(self, split: str) -> int:
        """Number of images of ``split``."""
        return int(getattr(self, f'num_{split}'))


def make_config(source: str = 'bethesda', preset: str = '512',
                **overrides) -> MosaicConfig:
    """Build a :class:`MosaicConfig` from a preset plus overrides.

    Args:
        source (str): ``'bethesda'`` or ``'tct11'``.
        preset (str): Key of :data:`PRESETS`.
        **overrides: Any :class:`MosaicConfig` field; ``None`` values are
            ignored (so argparse defaults of ``None`` keep the preset).

    Returns:
        MosaicConfig: The validated configuration.
    """
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose from {list(PRESETS)}')
    values = dict(PRESETS[preset], source=source, preset=preset)
    cfg = MosaicConfig(**apply_overrides(
        values, overrides, ('cells_per_image', 'split_ratios', 'crop_scale')))
    _validate_config(cfg)
    return cfg


def _validate_config(cfg: MosaicConfig) -> None:
    """Raise ``ValueError`` with a fix hint for inconsistent settings."""
    if cfg.source not in ('bethesda', 'tct11'):
        raise ValueError(f'--source must be bethesda or tct11, got {cfg.source!r}')
    if not 0.0 < cfg.abnormal_fraction <= 1.0:
        raise ValueError('--abnormal-fraction must be in (0, 1]')
    if not 0.0 <= cfg.negative_fraction <= 1.0:
        raise ValueError('--negative-fraction must be in [0, 1]')
    if not 8 <= cfg.min_cell_size <= cfg.max_cell_size <= cfg.img_size:
        raise ValueError('need 8 <= --min-cell-size <= --max-cell-size <= '
                         f'--img-size, got {cfg.min_cell_size}, '
                         f'{cfg.max_cell_size}, {cfg.img_size}')
    check_common_settings(cfg, 'cells_per_image')


def class_names(cfg: MosaicConfig) -> Tuple[str, ...]:
    """Category names in COCO id order (id = index + 1).

    Args:
        cfg (MosaicConfig): Build settings.

    Returns:
        tuple[str]: Abnormal classes of the source, plus ``NILM`` last when
        ``cfg.annotate_normal``.
    """
    names = BETHESDA_CLASSES if cfg.source == 'bethesda' else TCT11_CLASSES
    return tuple(names) + ((NORMAL_CLASS,) if cfg.annotate_normal else ())


__all__ = ['PRESETS', 'MosaicConfig', 'make_config', 'class_names']
