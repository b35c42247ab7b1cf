"""Labelled regions of interest (ROIs) for the weakly supervised ROI classifier:
composed from real cell crops (:mod:`.composed_set`) or cut from the real
CRIC fields (:mod:`.cric_fields`).

For Shi et al. (ISBI 2022, "Global-local attention network for weakly
supervised cervical cytology ROI analysis"): every
ROI is one image holding many cells, labelled NILM / LSIL / HSIL after the
*worst* cell it contains; the cell boxes and cell classes are kept for
cell-level evaluation (the model never trains on them).

The cell crops are real; the composition (placement, scale, background) is
ours. Two sources (``--source``):

* ``cric`` (default): the CRIC Cervix collection (Rezende et al. 2021, CC BY
  4.0, ``cric_crops_bethesda``, 100 px crops, one folder per Bethesda class);
* ``herlev``: the Herlev Pap smear cells (Jantzen et al. 2005, ``herlev``,
  224 px single cells with visible nuclei, letterbox bars trimmed), see
  the table below.

The background is the one of the mosaics (:mod:`cervdet.datasets.synthesis`):
blank glass quilted from the real ThinPrep field ``tct_field``
(``--background field``, default) or a smooth paper-white of the glass colour
plus noise (``--background paper``).

ROI label rule (ours; :data:`cervdet.datasets.classes.CELL_TO_ROI_CLASS`,
severity NILM < LSIL < HSIL; :func:`roi_label_of`):

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

Herlev folders -> cell classes (``--source herlev``,
:data:`cervdet.datasets.classes.HERLEV_FOLDER_TO_CELL_CLASS`; our mapping, Herlev has
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

``tools/dataset_converters/build_roi_set.py`` and
``tools/dataset_converters/cric_fields_to_roi_set.py`` are the command lines.
"""
from cervdet.datasets.classes import (
    CELL_TO_ROI_CLASS,
    HERLEV_FOLDER_TO_CELL_CLASS,
    ROI_CLASSES,
)
from cervdet.datasets.synthesis import SPLITS

from .composed_set import (
    build_roi_set,
    build_split,
    field_of,
    list_crops,
    pool_by_cell_class,
    split_counts,
    split_crops,
)
from .composition import (
    TrimmedCropCache,
    compose_roi,
    free_positions,
    trim_uniform_border,
)
from .config import (
    CELL_CLASSES,
    HERLEV_CELL_CLASSES,
    PRESETS,
    SOURCES,
    CellSource,
    ROISetConfig,
    make_config,
)
from .cric_fields import (
    build_cric_field_rois,
    class_agnostic,
    cut_rois,
    read_coco_cells,
    read_csv_cells,
    split_fields,
    window_origins,
)
from .labels import balanced_labels, roi_coco, roi_label_of, rois_per_class

__all__ = [
    'CELL_TO_ROI_CLASS', 'HERLEV_FOLDER_TO_CELL_CLASS', 'ROI_CLASSES',
    'SPLITS', 'build_roi_set', 'build_split', 'field_of', 'list_crops',
    'pool_by_cell_class', 'split_counts', 'split_crops', 'TrimmedCropCache',
    'compose_roi', 'free_positions', 'trim_uniform_border', 'CELL_CLASSES',
    'HERLEV_CELL_CLASSES', 'PRESETS', 'SOURCES', 'CellSource', 'ROISetConfig',
    'make_config', 'build_cric_field_rois', 'class_agnostic', 'cut_rois',
    'read_coco_cells', 'read_csv_cells', 'split_fields', 'window_origins',
    'balanced_labels', 'roi_coco', 'roi_label_of', 'rois_per_class'
]
