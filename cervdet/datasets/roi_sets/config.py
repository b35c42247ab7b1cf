"""Settings of a composed ROI set: cell sources, presets and
:class:`ROISetConfig`."""
from dataclasses import dataclass
from typing import Dict, Tuple

from cervdet.datasets.build_settings import apply_overrides, check_common_settings
from cervdet.datasets.classes import (
    BETHESDA6_CLASSES,
    CELL_TO_ROI_CLASS,
    HERLEV_FOLDER_TO_CELL_CLASS,
    ROI_CLASSES,
)

#: Cell classes of a CRIC ROI set = COCO categories (id = index + 1) = crop
#: folder names.
CELL_CLASSES: Tuple[str, ...] = BETHESDA6_CLASSES
#: Cell classes (= COCO categories) of a Herlev ROI set: the ROI classes.
HERLEV_CELL_CLASSES: Tuple[str, ...] = ROI_CLASSES


@dataclass
class CellSource:
    """Where the cell crops of an ROI set come from and what they mean.

    Args:
        name (str): ``--source`` value.
        crop_dir (str): Default crop folder inside the shared data root.
        cell_classes (tuple[str]): COCO categories (id = index + 1).
        cell_to_roi_class (dict[str, str]): Cell class -> ROI class.
        folder_to_cell_class (dict[str, str]): Crop sub-folder -> cell class
            (folders are split into train/val/test one by one, in order).
        crop_px (int): Typical crop side; the presets' ``crop_scale`` is
            given for 100 px and multiplied by ``100 / crop_px``.
        trim_borders (bool): Cut uniform letterbox bars off the crops
            (:func:`trim_uniform_border`).
        note (str): Provenance written to ``meta.json``.
    """

    name: str
    crop_dir: str
    cell_classes: Tuple[str, ...]
    cell_to_roi_class: Dict[str, str]
    folder_to_cell_class: Dict[str, str]
    crop_px: int
    trim_borders: bool
    note: str


#: ``--source`` choices.
SOURCES: Dict[str, CellSource] = {
    'cric': CellSource(
        name='cric', crop_dir='cric_crops_bethesda', cell_classes=CELL_CLASSES,
        cell_to_roi_class=CELL_TO_ROI_CLASS,
        folder_to_cell_class={c: c for c in CELL_CLASSES}, crop_px=100,
        trim_borders=False,
        note=('ROIs composed from real CRIC cell crops (CC BY 4.0); the crops '
              'are real, the composition (placement, scale, background) is '
              'ours. ROI label = worst cell present.')),
    'herlev': CellSource(
        name='herlev', crop_dir='herlev', cell_classes=HERLEV_CELL_CLASSES,
        cell_to_roi_class={c: c for c in HERLEV_CELL_CLASSES},
        folder_to_cell_class=HERLEV_FOLDER_TO_CELL_CLASS, crop_px=224,
        trim_borders=True,
        note=('ROIs composed from real Herlev Pap smear cells (Jantzen et al. '
              '2005, research use); the cells are real, the folder -> '
              'NILM/LSIL/HSIL mapping and the composition (placement, scale, '
              'background) are ours. ROI label = worst cell present.')),
}

#: Defaults per ``--preset``; every key can be overridden on the command line.
PRESETS: Dict[str, Dict] = {
    'cpu': dict(roi_size=512, cells_per_roi=(8, 30), num_train=60,
                num_val=15, num_test=15, crop_scale=(0.55, 0.8)),
    '1024': dict(roi_size=1024, cells_per_roi=(30, 90), num_train=300,
                 num_val=60, num_test=60, crop_scale=(0.9, 1.3)),
    '2048': dict(roi_size=2048, cells_per_roi=(100, 300), num_train=300,
                 num_val=60, num_test=60, crop_scale=(1.2, 1.8)),
}


@dataclass
class ROISetConfig:
    """All settings of one ROI build (written to ``meta.json``).

    Args:
        preset (str): Name of the preset the defaults came from.
        source (str): Key of :data:`SOURCES` (``'cric'`` or ``'herlev'``).
        roi_size (int): Side of the square ROI images in pixels.
        cells_per_roi (tuple[int, int]): Min and max number of cells tried
            per ROI (inclusive); a few may not fit, at least one always does.
        abnormal_fraction (tuple[float, float]): Range of the share of
            abnormal cells of an LSIL / HSIL ROI (at least one cell).
        low_grade_in_hsil (float): Probability that an abnormal cell of an
            HSIL ROI, beyond the first, is low grade (ASC-US / LSIL).
        num_train (int): Number of train ROIs.
        num_val (int): Number of val ROIs.
        num_test (int): Number of test ROIs.
        split_ratios (tuple[float, float, float]): Share of each class's
            crops given to train/val/test.
        crop_scale (tuple[float, float]): Range of the random resize factor
            of a crop (CRIC crops are 100 px, Herlev crops 224 px; the
            presets' values, for 100 px, are scaled by ``100 / crop_px`` of
            the source unless given).
        max_overlap (float): Largest share of a new cell's box that may cover
            already placed cells.
        min_crop_contrast (float): Crops whose centre holds no dark object
            (nucleus) of this contrast are not used (see
            :func:`cervdet.datasets.synthesis.crop_contrast`).
        background (str): ``'field'`` (quilted real blank glass) or
            ``'paper'`` (smooth glass colour plus noise).
        seed (int): Seed of every random choice.
        jpeg_quality (int): JPEG quality of the written ROIs.
    """

    preset: str = 'cpu'
    source: str = 'cric'
    roi_size: int = 512
    cells_per_roi: Tuple[int, int] = (8, 30)
    abnormal_fraction: Tuple[float, float] = (0.01, 0.3)
    low_grade_in_hsil: float = 0.3
    num_train: int = 60
    num_val: int = 15
    num_test: int = 15
    split_ratios: Tuple[float, float, float] = (0.7, 0.15, 0.15)
    crop_scale: Tuple[float, float] = (0.55, 0.8)
    max_overlap: float = 0.1
    min_crop_contrast: float = 40.0
    background: str = 'field'
    seed: int = 0
    jpeg_quality: int = 95

    def num_rois(self, split: str) -> int:
        """Number of ROIs of ``split``."""
        return int(getattr(self, f'num_{split}'))


def make_config(preset: str = 'cpu', **overrides) -> ROISetConfig:
    """Build a :class:`ROISetConfig` from a preset plus overrides.

    Args:
        preset (str): Key of :data:`PRESETS`.
        **overrides: Any :class:`ROISetConfig` field; ``None`` values are
            ignored (argparse defaults of ``None`` keep the preset).

    Returns:
        ROISetConfig: The validated configuration.
    """
    if preset not in PRESETS:
        raise ValueError(f'unknown --preset {preset!r}; choose from '
                         f'{list(PRESETS)}')
    source = overrides.get('source') or 'cric'
    if source not in SOURCES:
        raise ValueError(f'unknown --source {source!r}; choose from '
                         f'{list(SOURCES)}')
    values = dict(PRESETS[preset], preset=preset)
    factor = 100.0 / SOURCES[source].crop_px
    if factor != 1.0:  # preset crop scales are for 100 px crops
        values['crop_scale'] = tuple(
            round(v * factor, 3) for v in values['crop_scale'])
    cfg = ROISetConfig(**apply_overrides(
        values, overrides,
        ('cells_per_roi', 'abnormal_fraction', 'split_ratios', 'crop_scale')))
    flo, fhi = cfg.abnormal_fraction
    if not 0.0 <= flo <= fhi <= 1.0:
        raise ValueError('--abnormal-fraction needs 0 <= LO <= HI <= 1, got '
                         f'{flo} {fhi}')
    if not 0.0 <= cfg.low_grade_in_hsil <= 1.0:
        raise ValueError('--low-grade-in-hsil must be in [0, 1]')
    if cfg.roi_size < 64:
        raise ValueError(f'--roi-size must be >= 64, got {cfg.roi_size}')
    check_common_settings(cfg, 'cells_per_roi')
    return cfg


__all__ = ['CELL_CLASSES', 'HERLEV_CELL_CLASSES', 'CellSource', 'SOURCES',
           'PRESETS', 'ROISetConfig', 'make_config']
