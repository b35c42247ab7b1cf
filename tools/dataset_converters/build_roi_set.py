"""Compose labelled regions of interest (ROIs) from real cell crops.

For the weakly supervised ROI classifier (Shi et al., ISBI 2022, "Global-local
attention network for weakly supervised cervical cytology ROI analysis"): every
ROI is one image holding many cells, labelled NILM / LSIL / HSIL after the
*worst* cell it contains; the cell boxes and cell classes are kept for
cell-level evaluation (the model never trains on them).

The cell crops are real; the composition (placement, scale, background) is
ours. Two sources (``--source``):

* ``cric`` (default): the CRIC Cervix collection (Rezende et al. 2021, CC BY
  4.0, ``cric_crops_bethesda``, 100 px crops, one folder per Bethesda class);
* ``herlev``: the Herlev Pap smear cells (Jantzen et al. 2005, ``herlev``,
  224 px single cells with visible nuclei, letterbox bars trimmed), see
  :data:`HERLEV_FOLDER_TO_CELL_CLASS` below.

The background is the one of ``build_mosaic.py`` (imported from it):
blank glass quilted from the real ThinPrep field ``tct_field``
(``--background field``, default) or a smooth paper-white of the glass colour
plus noise (``--background paper``).

ROI label rule (ours; :data:`CELL_TO_ROI_CLASS`, severity NILM < LSIL < HSIL):

=========  ==========
cell       ROI class
=========  ==========
NILM       NILM
ASC-US     LSIL
LSIL       LSIL
ASC-H      HSIL
HSIL       HSIL
SCC        HSIL
=========  ==========

ASC-US goes with LSIL (both are low-grade findings managed alike), ASC-H and
SCC with HSIL ("cannot exclude HSIL" and carcinoma are high grade).

Herlev folders -> cell classes (``--source herlev``; our mapping, Herlev has
no Bethesda labels): the cell classes of a Herlev set are NILM, LSIL, HSIL
(COCO ids 1..3), each its own ROI class, same ROI rule NILM < LSIL < HSIL:

=======================  ==========
Herlev folder            cell class
=======================  ==========
normal_superficiel       NILM
normal_intermediate      NILM
normal_columnar          NILM
light_dysplastic         LSIL
moderate_dysplastic      HSIL
severe_dysplastic        HSIL
carcinoma_in_situ        HSIL
=======================  ==========

Herlev holds only 195 normal cells: crops are drawn with replacement, so a
crop is reused across the ROIs of its split (as for CRIC), never across
splits (the split is made per folder before composing). The default
``--crop-scale`` of a preset is given for 100 px CRIC crops; for Herlev it
is scaled by 100 / 224 (``cpu``: 0.55-0.8 -> 0.246-0.357, i.e. 55-80 px
cells, like the CRIC cells of the CPU set). The ROI
classes of a split are balanced (``n // 3`` each, the remainder to the first
classes); an abnormal ROI has ``round(f * n_cells)`` (at least one) abnormal
cells, ``f`` uniform in ``--abnormal-fraction`` (1-30 % by default), like real
ROIs where abnormal cells are a minority. An HSIL ROI may also hold low-grade
cells (``--low-grade-in-hsil``). Crops of every class are split into
train/val/test *before* composing (no crop in two splits; ``meta.json`` lists
them); CRIC crops are split per source field (``<fieldstem>_<cellid>``:
all cells of a field in one split).

Output layout::

    OUT/images/{train,val,test}/roi_<split>_<i>.jpg
    OUT/annotations/{train,val,test}.json   # COCO + roi_classes/roi_label
    OUT/meta.json                           # arguments, crops per split, counts

Each annotation file is COCO detection (``categories`` = the cell classes of
the source, ids 1..K in their order: :data:`CELL_CLASSES` for CRIC,
:data:`HERLEV_CELL_CLASSES` for Herlev; boxes xywh in pixels) plus the
top-level ``roi_classes`` and ``cell_to_roi_class`` and ``roi_label`` per image, as read
by ``cervdet.datasets.ROIBagDataset``.

Example::

    python tools/dataset_converters/build_roi_set.py --preset cpu \\
        --out-dir data/roi-cric-512
    python tools/dataset_converters/build_roi_set.py --preset cpu \\
        --source herlev --num-train 300 --num-val 60 --num-test 60 \\
        --out-dir data/cervical-roi-herlev-512
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_mosaic as bm  # noqa: E402  (backgrounds, cell masks, splits)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: ``$CERVDET_SHARED_DATA``, else ``../shared/data`` beside the project root.
DEFAULT_DATA_ROOT = Path(os.environ.get(
    'CERVDET_SHARED_DATA', PROJECT_ROOT / '..' / 'shared' / 'data')).resolve()
#: Default ``--crop-root``: the CRIC crops, one folder per class.
DEFAULT_CROP_ROOT = DEFAULT_DATA_ROOT / 'cric_crops_bethesda'

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: Cell classes = COCO categories (id = index + 1) = crop folder names.
CELL_CLASSES: Tuple[str, ...] = ('NILM', 'ASC-US', 'ASC-H', 'LSIL', 'HSIL',
                                 'SCC')
#: ROI classes in severity order (index = severity).
ROI_CLASSES: Tuple[str, ...] = ('NILM', 'LSIL', 'HSIL')
#: How a cell class counts for the ROI label (the table of the docstring).
CELL_TO_ROI_CLASS: Dict[str, str] = {
    'NILM': 'NILM', 'ASC-US': 'LSIL', 'LSIL': 'LSIL',
    'ASC-H': 'HSIL', 'HSIL': 'HSIL', 'SCC': 'HSIL'}
IMG_EXTS = bm.IMG_EXTS  # cervdet.utils.constants.IMG_EXTS

#: Herlev folder -> cell class (ours; the table of the docstring).
HERLEV_FOLDER_TO_CELL_CLASS: Dict[str, str] = {
    'normal_superficiel': 'NILM', 'normal_intermediate': 'NILM',
    'normal_columnar': 'NILM', 'light_dysplastic': 'LSIL',
    'moderate_dysplastic': 'HSIL', 'severe_dysplastic': 'HSIL',
    'carcinoma_in_situ': 'HSIL'}
#: Cell classes (= COCO categories) of a Herlev ROI set.
HERLEV_CELL_CLASSES: Tuple[str, ...] = ('NILM', 'LSIL', 'HSIL')


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
            ``build_mosaic.crop_contrast``).
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
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ('cells_per_roi', 'abnormal_fraction', 'split_ratios',
                'crop_scale'):
        if key in values:
            values[key] = tuple(values[key])
    cfg = ROISetConfig(**values)
    lo, hi = cfg.cells_per_roi
    if not 1 <= lo <= hi:
        raise ValueError(f'--cells-per-roi needs 1 <= MIN <= MAX, got {lo} {hi}')
    flo, fhi = cfg.abnormal_fraction
    if not 0.0 <= flo <= fhi <= 1.0:
        raise ValueError('--abnormal-fraction needs 0 <= LO <= HI <= 1, got '
                         f'{flo} {fhi}')
    if not 0.0 <= cfg.low_grade_in_hsil <= 1.0:
        raise ValueError('--low-grade-in-hsil must be in [0, 1]')
    if len(cfg.split_ratios) != 3 or min(cfg.split_ratios) <= 0:
        raise ValueError('--split-ratios needs three positive numbers, e.g. '
                         f'0.7 0.15 0.15; got {cfg.split_ratios}')
    if not 0 < cfg.crop_scale[0] <= cfg.crop_scale[1]:
        raise ValueError(f'--crop-scale needs 0 < LO <= HI, got {cfg.crop_scale}')
    if cfg.background not in ('field', 'paper'):
        raise ValueError(f'--background must be field or paper, got '
                         f'{cfg.background!r}')
    if cfg.roi_size < 64:
        raise ValueError(f'--roi-size must be >= 64, got {cfg.roi_size}')
    if min(cfg.num_train, cfg.num_val, cfg.num_test) < 0:
        raise ValueError('--num-train/--num-val/--num-test must be >= 0')
    return cfg


# ----------------------------------------------------------------------------
# Pure helpers (tested directly)
# ----------------------------------------------------------------------------
def roi_label_of(cell_classes: Sequence[str],
                 mapping: Dict[str, str] = CELL_TO_ROI_CLASS,
                 roi_classes: Sequence[str] = ROI_CLASSES) -> str:
    """ROI class of a set of cells: the worst (most severe) cell present.

    Args:
        cell_classes (Sequence[str]): Cell class names of the ROI.
        mapping (dict[str, str]): Cell class -> ROI class.
        roi_classes (Sequence[str]): ROI classes in severity order.

    Returns:
        str: The ROI class (``roi_classes[0]`` for no cells).
    """
    severity = [roi_classes.index(mapping[c]) for c in cell_classes]
    return roi_classes[max(severity, default=0)]


def balanced_labels(n: int, num_classes: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n`` class indices, each class ``n // C`` or ``n // C + 1`` times.

    Args:
        n (int): Number of ROIs.
        num_classes (int): Number of ROI classes ``C``.
        rng (np.random.Generator): Random generator (shuffles the order).

    Returns:
        np.ndarray: int64 ``[n]``.
    """
    return rng.permutation(np.arange(n, dtype=np.int64) % num_classes)


def free_positions(occupied: np.ndarray, h: int, w: int, max_cover: float,
                   stride: int = 4) -> np.ndarray:
    """All top-left corners where an ``h x w`` box covers few occupied pixels.

    Vectorised with an integral image over a grid of candidate corners.

    Args:
        occupied (np.ndarray): bool ``[H, W]`` pixels of placed cells.
        h (int): Box height.
        w (int): Box width.
        max_cover (float): Largest share of the box's ``h * w`` pixels that
            may be occupied.
        stride (int): Grid step of the candidates.

    Returns:
        np.ndarray: int ``[K, 2]`` of ``(y, x)`` corners (``K`` may be 0).
    """
    H, W = occupied.shape
    if h > H or w > W:
        return np.zeros((0, 2), dtype=np.int64)
    integral = cv2.integral(occupied.astype(np.uint8))  # [H+1, W+1]
    ys = np.arange(0, H - h + 1, stride)
    xs = np.arange(0, W - w + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing='ij')
    cover = (integral[yy + h, xx + w] - integral[yy, xx + w]
             - integral[yy + h, xx] + integral[yy, xx])
    ok = cover <= max_cover * h * w
    return np.stack([yy[ok], xx[ok]], axis=1).astype(np.int64)


def trim_uniform_border(img: np.ndarray, max_std: float = 4.0,
                        min_keep: float = 0.3) -> np.ndarray:
    """Cut uniform bars (letterboxing) off the edges of a crop.

    Leading / trailing rows and columns whose grey-level standard deviation
    is at most ``max_std`` are removed (vectorised over rows and columns).

    Args:
        img (np.ndarray): BGR uint8 ``[h, w, 3]``.
        max_std (float): Largest grey std of a row / column counted as a bar.
        min_keep (float): If less than this share of the height or width
            would remain, the crop is returned unchanged.

    Returns:
        np.ndarray: BGR uint8 ``[h', w', 3]`` (a view of ``img``).
    """
    gray = cv2.cvtColor(np.ascontiguousarray(img),
                        cv2.COLOR_BGR2GRAY).astype(np.float32)
    rows = np.flatnonzero(gray.std(axis=1) > max_std)
    cols = np.flatnonzero(gray.std(axis=0) > max_std)
    h, w = gray.shape
    if len(rows) == 0 or len(cols) == 0:
        return img
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if y1 - y0 < min_keep * h or x1 - x0 < min_keep * w:
        return img
    return img[y0:y1, x0:x1]


class TrimmedCropCache(bm.CropCache):
    """:class:`build_mosaic.CropCache` returning crops without letterbox
    bars (:func:`trim_uniform_border`)."""

    def __call__(self, path: Path) -> np.ndarray:
        """Return the trimmed crop at ``path`` (trimmed once, cached)."""
        img = self._cache.get(path)
        if img is None:
            img = np.ascontiguousarray(trim_uniform_border(super().__call__(
                path)))
            self._cache[path] = img
        return img


# ----------------------------------------------------------------------------
# Source crops
# ----------------------------------------------------------------------------
def list_crops(crop_root: Path, source: str = 'cric'
               ) -> Dict[str, List[Path]]:
    """Sorted crops per crop folder of ``source``.

    For CRIC the folders are the cell classes (:data:`CELL_CLASSES`), for
    Herlev the seven Herlev classes (:data:`HERLEV_FOLDER_TO_CELL_CLASS`).

    Returns:
        dict: ``{folder name: [Path]}`` in the source's folder order.

    Raises:
        FileNotFoundError: If a class folder is missing or empty.
    """
    spec = SOURCES[source]
    folders = list(spec.folder_to_cell_class)
    crops = {}
    for cls in folders:
        folder = Path(crop_root) / cls
        if not folder.is_dir():
            raise FileNotFoundError(
                f'crop folder {folder} not found; --crop-root must hold one '
                f'folder per class {folders} for --source {source} (e.g. '
                f'the shared `{spec.crop_dir}`)')
        files = sorted(p for p in folder.iterdir()
                       if p.suffix.lower() in IMG_EXTS)
        if not files:
            raise FileNotFoundError(f'no images in {folder}')
        crops[cls] = files
    return crops


def field_of(path: Path) -> str:
    """Source field of a CRIC crop ``<fieldstem>_<cellid>.png``."""
    return Path(path).stem.rsplit('_', 1)[0]


def split_crops(crops: Dict[str, List[Path]], ratios: Sequence[float],
                seed: int, by_field: bool = False
                ) -> Dict[str, Dict[str, List[Path]]]:
    """Split every folder's crops into disjoint train/val/test parts.

    Args:
        crops (dict): ``{folder: [Path]}``.
        ratios (Sequence[float]): train / val / test shares.
        seed (int): Seed.
        by_field (bool): Split the source fields (:func:`field_of`) of all
            folders together, so all cells of a field go to one split (the
            CRIC crops, named ``<fieldstem>_<cellid>``); else each folder's
            crops on their own.

    Returns:
        dict: ``{split: {folder: [Path]}}``.
    """
    rng = np.random.default_rng([seed, 31337])
    pools: Dict[str, Dict[str, List[Path]]] = {s: {} for s in SPLITS}
    if by_field:
        fields = sorted({field_of(p) for ps in crops.values() for p in ps})
        split_of = {f: s for s, part in zip(
            SPLITS, bm.split_items(fields, ratios, rng)) for f in part}
        for cls, paths in crops.items():
            for s in SPLITS:
                pools[s][cls] = [p for p in paths
                                 if split_of[field_of(p)] == s]
        return pools
    for cls, paths in crops.items():
        for s, part in zip(SPLITS, bm.split_items(paths, ratios, rng)):
            pools[s][cls] = part
    return pools


def pool_by_cell_class(pool: Dict[str, List[Path]],
                       folder_to_cell_class: Dict[str, str]
                       ) -> Dict[str, List[Path]]:
    """Merge the crops of folders of the same cell class.

    Args:
        pool (dict[str, list[Path]]): ``{folder: [Path]}`` of one split.
        folder_to_cell_class (dict[str, str]): Folder -> cell class.

    Returns:
        dict: ``{cell class: [Path]}`` (classes in first-seen order).
    """
    merged: Dict[str, List[Path]] = {}
    for folder, paths in pool.items():
        merged.setdefault(folder_to_cell_class[folder], []).extend(paths)
    return merged


def _groups(pool: Dict[str, List[Path]],
            mapping: Dict[str, str] = CELL_TO_ROI_CLASS
            ) -> Dict[str, List[str]]:
    """Cell classes with crops in ``pool``, per ROI class."""
    groups = {r: [] for r in ROI_CLASSES}
    for cls, paths in pool.items():
        if paths:
            groups[mapping[cls]].append(cls)
    return groups


# ----------------------------------------------------------------------------
# Composition
# ----------------------------------------------------------------------------
def _prepare(crop: np.ndarray, cfg: ROISetConfig, rng: np.random.Generator,
             colour: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Flip/rotate, rescale, white-balance and mask one crop."""
    crop = np.rot90(crop[:, ::-1] if rng.integers(2) else crop,
                    rng.integers(4))
    h, w = crop.shape[:2]
    s = rng.uniform(*cfg.crop_scale)
    nh, nw = max(8, round(h * s)), max(8, round(w * s))
    crop = cv2.resize(np.ascontiguousarray(crop), (nw, nh),
                      interpolation=cv2.INTER_AREA if s < 1 else
                      cv2.INTER_LINEAR)
    bg = bm.crop_background_colour(crop)
    if bg is not None:
        gain = np.clip(colour / np.maximum(bg, 1), 0.8, 1.25)
        crop = np.clip(crop * gain + 0.5, 0, 255).astype(np.uint8)
    alpha, _ = bm.cell_alpha(crop)
    box = bm.mask_bbox(alpha > 0.02)
    if box is None or (alpha > 0.5).sum() < 16:
        return None
    x, y, bw, bh = box
    return crop[y:y + bh, x:x + bw], alpha[y:y + bh, x:x + bw]


def _cell_plan(cfg: ROISetConfig, label: str, groups: Dict[str, List[str]],
               rng: np.random.Generator) -> List[str]:
    """Cell classes of one ROI of class ``label`` (label-setting cell first)."""
    n = int(rng.integers(cfg.cells_per_roi[0], cfg.cells_per_roi[1] + 1))
    if label == 'NILM':
        return ['NILM'] * n
    frac = rng.uniform(*cfg.abnormal_fraction)
    n_abn = int(min(n, max(1, round(frac * n))))
    plan = [groups[label][rng.integers(len(groups[label]))]]
    for _ in range(n_abn - 1):
        group = label
        if label == 'HSIL' and groups['LSIL'] and \
                rng.random() < cfg.low_grade_in_hsil:
            group = 'LSIL'
        plan.append(groups[group][rng.integers(len(groups[group]))])
    return plan + ['NILM'] * (n - n_abn)


def compose_roi(cfg: ROISetConfig, label: str, pool: Dict[str, List[Path]],
                crops: 'bm.CropCache', bank: 'bm.BackgroundBank',
                rng: np.random.Generator,
                mapping: Dict[str, str] = CELL_TO_ROI_CLASS
                ) -> Tuple[np.ndarray, List[Dict]]:
    """Compose one ROI of class ``label`` and its cells.

    The label-setting abnormal cell is placed first (retried with other
    crops until it fits), then the other abnormal and the normal cells;
    cells that find no free place are left out, so the ROI label is
    recomputed from the cells placed (:func:`roi_label_of`) and checked.

    Returns:
        tuple: ``(image, cells)``: BGR uint8 ``[S, S, 3]`` and a list of
        ``{'category': cell class, 'bbox': [x, y, w, h], 'area': int,
        'source': Path}``.
    """
    size = cfg.roi_size
    canvas = (bm.quilt_background(bank, size, rng) if cfg.background == 'field'
              else bm.paper_background(bank.colour, size, rng))
    groups = _groups(pool, mapping)
    plan = _cell_plan(cfg, label, groups, rng)
    occupied = np.zeros((size, size), bool)
    placed = []
    for k, cls in enumerate(plan):
        for attempt in range(40 if k == 0 else 1):
            if attempt:  # another crop of the label-setting group
                cls = groups[label][rng.integers(len(groups[label]))] \
                    if label != 'NILM' else 'NILM'
            paths = pool[cls]
            path = paths[rng.integers(len(paths))]
            cell = _prepare(crops(path), cfg, rng, bank.colour)
            if cell is None:
                continue
            pixels, alpha = cell
            h, w = alpha.shape
            free = free_positions(occupied, h, w, cfg.max_overlap)
            if len(free) == 0:
                continue
            y, x = free[rng.integers(len(free))]
            solid = alpha > 0.5
            occupied[y:y + h, x:x + w] |= solid
            placed.append((cls, path, pixels, alpha, int(x), int(y)))
            break
        else:
            if k == 0:
                raise RuntimeError(
                    f'could not place a single {label} cell in a {size} px '
                    'ROI; lower --crop-scale or raise --roi-size')
    # normal cells are drawn first, abnormal ones on top
    placed.sort(key=lambda c: c[0] != 'NILM')
    cells = []
    for cls, path, pixels, alpha, x, y in placed:
        bm.paste(canvas, pixels, alpha, x, y)
        bx, by, bw, bh = bm.mask_bbox(alpha > 0.5)
        cells.append(dict(category=cls, bbox=[x + bx, y + by, bw, bh],
                          area=int((alpha > 0.5).sum()), source=path))
    got = roi_label_of([c['category'] for c in cells], mapping)
    if got != label:  # cannot happen: the first cell sets the label
        raise RuntimeError(f'ROI composed as {label} holds cells of {got}')
    return canvas, cells


def build_split(cfg: ROISetConfig, split: str, pool: Dict[str, List[Path]],
                crops: 'bm.CropCache', bank: 'bm.BackgroundBank',
                img_dir: Path, bar: Optional[tqdm] = None
                ) -> Tuple[Dict, set]:
    """Compose and write all ROIs of one split.

    Returns:
        tuple: ``(coco, used)``: the annotation dict of the interface
        (COCO + ``roi_classes``, ``cell_to_roi_class``, ``roi_label``) and
        the set of crop paths used.
    """
    spec = SOURCES[cfg.source]
    mapping, cell_classes = spec.cell_to_roi_class, spec.cell_classes
    split_idx = SPLITS.index(split)
    n = cfg.num_rois(split)
    labels = balanced_labels(n, len(ROI_CLASSES),
                             np.random.default_rng([cfg.seed, split_idx, 7]))
    groups = _groups(pool, mapping)
    for r in ROI_CLASSES:
        if (labels == ROI_CLASSES.index(r)).any() and not groups[r]:
            raise RuntimeError(f'no {r} crops in split {split}; check '
                               '--crop-root and --split-ratios')
    cat_id = {c: i + 1 for i, c in enumerate(cell_classes)}
    coco = dict(images=[], annotations=[],
                categories=[dict(id=cat_id[c], name=c) for c in cell_classes],
                roi_classes=list(ROI_CLASSES),
                cell_to_roi_class=dict(mapping))
    img_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_idx, i])
        label = ROI_CLASSES[labels[i]]
        img, cells = compose_roi(cfg, label, pool, crops, bank, rng,
                                 mapping)
        file_name = f'roi_{split}_{i:05d}.jpg'
        if not cv2.imwrite(str(img_dir / file_name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise IOError(f'cannot write {img_dir / file_name}')
        coco['images'].append(dict(id=i + 1, file_name=file_name,
                                   width=cfg.roi_size, height=cfg.roi_size,
                                   roi_label=label))
        for c in cells:
            used.add(c['source'])
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=i + 1,
                category_id=cat_id[c['category']], bbox=c['bbox'],
                area=c['area'], iscrowd=0))
        if bar is not None:
            bar.update(1)
    return coco, used


def _prepare_out_dir(out_dir: Path, force_overwrite: bool) -> None:
    """Refuse a non-empty ``out_dir`` unless ``force_overwrite`` (the rule
    and layout of ``build_mosaic.py``)."""
    bm._prepare_out_dir(out_dir, force_overwrite, flag='--force-overwrite')


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def build_roi_set(out_dir, crop_root=None,
                  field_path: Optional[Path] = None, preset: str = 'cpu',
                  force_overwrite: bool = False, progress: bool = True,
                  **overrides) -> Dict:
    """Build the three ROI splits and ``meta.json``.

    Args:
        out_dir (str | Path): Output folder (empty or absent unless
            ``force_overwrite``).
        crop_root (str | Path, optional): Folder with one sub-folder of
            crops per class of the source (``source=`` override, default
            ``'cric'``: :data:`CELL_CLASSES`; ``'herlev'``: the seven Herlev
            folders); defaults to the source's folder of the shared data.
        field_path (Path, optional): Real field for the background; defaults
            to ``tct_field/field_4096x2816.jpg`` beside ``crop_root``.
        preset (str): Key of :data:`PRESETS`.
        force_overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show a progress bar.
        **overrides: :class:`ROISetConfig` fields (``num_train=4``,
            ``source='herlev'``, ...).

    Returns:
        dict: ``{'out_dir', 'meta', 'annotations': {split: Path},
        'images': {split: Path}}``.
    """
    t0 = time.time()
    cfg = make_config(preset, **overrides)
    spec = SOURCES[cfg.source]
    if crop_root is None:
        crop_root = DEFAULT_DATA_ROOT / spec.crop_dir
    crop_root, out_dir = Path(crop_root).resolve(), Path(out_dir).resolve()
    if out_dir == crop_root or crop_root in out_dir.parents:
        raise ValueError(f'--out-dir {out_dir} is inside --crop-root '
                         f'{crop_root}; write the ROI set elsewhere')
    field_path = Path(field_path) if field_path else \
        crop_root.parent / bm.FIELD_FILE
    crops_per_folder = list_crops(crop_root, cfg.source)
    bank = bm.load_background_bank(field_path)
    _prepare_out_dir(out_dir, force_overwrite)
    folder_pools = split_crops(crops_per_folder, cfg.split_ratios, cfg.seed,
                               by_field=cfg.source == 'cric')
    pools = {s: pool_by_cell_class(folder_pools[s], spec.folder_to_cell_class)
             for s in SPLITS}
    crops = (TrimmedCropCache if spec.trim_borders else bm.CropCache)(
        crop_root)
    root = crop_root.parent
    result = dict(out_dir=out_dir, meta=out_dir / 'meta.json',
                  annotations={}, images={})
    (out_dir / 'annotations').mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=sum(cfg.num_rois(s) for s in SPLITS), unit='roi',
               desc=f'ROIs {cfg.preset}', disable=not progress)
    counts, used, dropped = {}, {}, {}
    for split in SPLITS:
        pool, dropped_paths = bm.usable_abnormal(pools[split], crops,
                                                 cfg.min_crop_contrast)
        dropped[split] = sorted(_rel(p, root) for p in dropped_paths)
        img_dir = out_dir / 'images' / split
        coco, used_paths = build_split(cfg, split, pool, crops, bank, img_dir,
                                       bar)
        ann_file = out_dir / 'annotations' / f'{split}.json'
        ann_file.write_text(json.dumps(coco))
        result['annotations'][split], result['images'][split] = \
            ann_file, img_dir
        used[split] = sorted(_rel(p, root) for p in used_paths)
        counts[split] = split_counts(coco)
    bar.close()
    meta = dict(
        tool='tools/dataset_converters/build_roi_set.py',
        note=spec.note, source=cfg.source,
        config=asdict(cfg), crop_root=str(crop_root),
        background_field=str(field_path),
        roi_classes=list(ROI_CLASSES), cell_classes=list(spec.cell_classes),
        cell_to_roi_class=dict(spec.cell_to_roi_class),
        folder_to_cell_class=dict(spec.folder_to_cell_class),
        crops_per_folder={s: {f: [_rel(p, root) for p in ps]
                              for f, ps in folder_pools[s].items()}
                          for s in SPLITS},
        crops={s: {c: [_rel(p, root) for p in ps]
                   for c, ps in pools[s].items()} for s in SPLITS},
        used_crops=used, dropped_low_contrast_crops=dropped,
        counts=counts, build_seconds=round(time.time() - t0, 2))
    result['meta'].write_text(json.dumps(meta, indent=1))
    return result


def split_counts(coco: Dict) -> Dict:
    """ROIs per ROI class and cells per cell class of one annotation dict."""
    id_to_name = {c['id']: c['name'] for c in coco['categories']}
    cells = {n: 0 for n in id_to_name.values()}
    for a in coco['annotations']:
        cells[id_to_name[a['category_id']]] += 1
    rois = {r: 0 for r in coco['roi_classes']}
    for img in coco['images']:
        rois[img['roi_label']] += 1
    return dict(rois=len(coco['images']), rois_per_class=rois,
                cells=len(coco['annotations']), cells_per_class=cells)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``None`` values mean "preset default")."""
    p = argparse.ArgumentParser(
        description='Compose NILM/LSIL/HSIL ROIs from real CRIC or Herlev '
                    'cell crops (crops real, composition ours; label = worst '
                    'cell).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out-dir', type=Path, required=True, help='output folder')
    p.add_argument('--source', choices=sorted(SOURCES), default='cric',
                   help='cell crops: cric (6 Bethesda folders, 100 px) or '
                        'herlev (7 Herlev folders, 224 px, mapped to '
                        'NILM/LSIL/HSIL as in the module docstring)')
    p.add_argument('--crop-root', type=Path, default=None,
                   help='one folder of crops per class of --source (default: '
                        f'{DEFAULT_DATA_ROOT}/<cric_crops_bethesda|herlev>)')
    p.add_argument('--field', type=Path, default=None,
                   help='real field image for the background (default: '
                        'tct_field/ beside --crop-root)')
    p.add_argument('--preset', choices=sorted(PRESETS), default='cpu',
                   help='defaults: ' + '; '.join(
                       f'{k}: {v}' for k, v in PRESETS.items()))
    p.add_argument('--roi-size', type=int, help='ROI side (px)')
    p.add_argument('--cells-per-roi', type=int, nargs=2, metavar=('MIN', 'MAX'))
    p.add_argument('--abnormal-fraction', type=float, nargs=2,
                   metavar=('LO', 'HI'),
                   help='range of the share of abnormal cells in an abnormal '
                        'ROI (0.01 0.3)')
    p.add_argument('--low-grade-in-hsil', type=float,
                   help='chance that an extra abnormal cell of an HSIL ROI is '
                        'low grade (0.3)')
    p.add_argument('--num-train', type=int)
    p.add_argument('--num-val', type=int)
    p.add_argument('--num-test', type=int)
    p.add_argument('--split-ratios', type=float, nargs=3,
                   metavar=('TRAIN', 'VAL', 'TEST'))
    p.add_argument('--crop-scale', type=float, nargs=2, metavar=('LO', 'HI'),
                   help='resize range of a crop (default: the preset\'s, for '
                        '100 px crops, x 100/224 for herlev)')
    p.add_argument('--max-overlap', type=float)
    p.add_argument('--min-crop-contrast', type=float)
    p.add_argument('--background', choices=('field', 'paper'))
    p.add_argument('--seed', type=int)
    p.add_argument('--jpeg-quality', type=int)
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace a previous build in a non-empty --out-dir')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    args = parse_args(argv)
    skip = ('out_dir', 'crop_root', 'field', 'preset', 'force_overwrite',
            'no_progress')
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    try:
        res = build_roi_set(args.out_dir, args.crop_root, args.field,
                            args.preset, args.force_overwrite,
                            not args.no_progress, **overrides)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    meta = json.loads(res['meta'].read_text())
    print(f"built {res['out_dir']} in {meta['build_seconds']} s")
    for split, c in meta['counts'].items():
        print(f"  {split:5s}: {c['rois']} ROIs {c['rois_per_class']}, "
              f"{c['cells']} cells {c['cells_per_class']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
