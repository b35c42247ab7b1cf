"""ROIs cut from the real CRIC Cervix fields, labelled by their worst marked
cell, for the weakly supervised ROI classifier (Shi et al., ISBI 2022).

Unlike the composed ROI sets (:mod:`.composed_set`, crops on a background), the
ROIs here are real Pap-smear fields or windows of them, with the cells the
CRIC pathologists marked (nucleus points of ``classifications.csv``, or the
``point`` / ``other_points`` of the COCO files of
``tools/dataset_converters/cric_to_coco.py``). Every marked cell becomes a
square box of ``--box-size`` native CRIC pixels (1376 x 1020 frame; CRIC's
own crops are 100 px) centred on its nucleus, scaled to the image and
clipped to the ROI. The ROI label is the worst marked cell, mapped to the
paper's three ROI classes (Sec. 3) by
:data:`cervdet.datasets.classes.CELL_TO_ROI_CLASS`
(NILM -> NILM; ASC-US, LSIL -> LSIL; ASC-H, HSIL, SCC -> HSIL).

* ``--roi-size 0`` (default): one ROI per field (688 x 510 in the shared
  data = a 1376 x 1020 native field, the size range of the paper's
  1024-2048 px ROIs at native resolution);
* ``--roi-size S``: ``S x S`` windows on a grid of ``--stride`` (default
  ``S``; the last window of a row / column is shifted inside the field);
  a cell belongs to the window holding its nucleus point; windows with
  fewer than ``--min-cells`` marked cells are left out.

CRIC's pathologists did not mark every cell of a field (shared data
README): a bag of annotated cells holds only marked cells, and cells found
by a detector (``cell_source='detections'``, the paper's default) may
include unmarked ones. The label stays the worst *marked* cell.

Splits: per field (all windows of a field in one split), ``--split-ratios``
of the fields at random (``--seed``), or the splits of the lead's COCO files
with ``--coco-dir`` (``{train,val,test}.json``).

Output layout (read by ``cervdet.datasets.ROIBagDataset``)::

    OUT/images/{train,val,test}/<fieldstem>[_x<x0>_y<y0>].jpg
    OUT/annotations/{train,val,test}.json   # COCO + roi_classes/roi_label
    OUT/annotations/cells_{train,val,test}.json  # one class 'cell'
    OUT/meta.json                           # arguments, fields per split

``cells_<split>.json`` holds the same boxes under one category ``cell``:
the training data of a class-agnostic cell detector (the paper's YOLOv4
"only provides the location of cells", Sec. 1), e.g.
``configs/roi_cls/cell_detector/yolox_s_8xb8-300e_cric-roi-fields-cells.py``.

``tools/dataset_converters/cric_fields_to_roi_set.py`` is the command line::

    python tools/dataset_converters/cric_fields_to_roi_set.py \\
        --out-dir data/cric-roi-fields
    python tools/dataset_converters/cric_fields_to_roi_set.py \\
        --roi-size 256 --out-dir data/cric-roi-256
"""
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from cervdet.datasets.cric import CRIC_NATIVE_SIZE as NATIVE_SIZE
from cervdet.datasets.cric import CRIC_TO_TBS as CSV_TO_CELL_CLASS
from cervdet.datasets.synthesis import SPLITS, prepare_out_dir, split_items
from cervdet.utils.constants import SHARED_DATA_ROOT

from .config import CELL_CLASSES
from .labels import roi_coco, roi_label_of, rois_per_class

Cell = Tuple[float, float, str, int]  # x, y (image px), class, CRIC cell id


def read_csv_cells(csv_path: Path, img_dir: Path
                   ) -> Tuple[Dict[str, List[Cell]], int]:
    """Marked cells per field stem from CRIC's ``classifications.csv``.

    Coordinates are scaled from the native frame to the image's size.

    Args:
        csv_path (Path): ``classifications.csv``.
        img_dir (Path): Folder of the field images (``<stem>.jpg|png``).

    Returns:
        tuple: ``{stem: [(x, y, cell_class, cell_id)]}`` for the stems with
        an image, and the number of CSV rows without an image (skipped).

    Raises:
        ValueError: A missing column or an unknown ``bethesda_system``,
            naming the file and row.
    """
    need = ('image_filename', 'cell_id', 'bethesda_system', 'nucleus_x',
            'nucleus_y')
    images = {p.stem: p for p in Path(img_dir).iterdir()
              if p.suffix.lower() in ('.jpg', '.jpeg', '.png')}
    sizes: Dict[str, Tuple[int, int]] = {}
    cells: Dict[str, List[Cell]] = {}
    skipped = 0
    with open(csv_path, newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in need if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f'{csv_path}: columns {missing} missing; '
                             "expected CRIC's classifications.csv with "
                             f'columns {list(need)}')
        for row_no, row in enumerate(reader, start=2):
            stem = Path(row['image_filename']).stem
            if stem not in images:
                skipped += 1
                continue
            name = CSV_TO_CELL_CLASS.get(row['bethesda_system'].strip())
            if name is None:
                raise ValueError(
                    f'{csv_path} line {row_no}: unknown bethesda_system '
                    f"{row['bethesda_system']!r}; known: "
                    f'{sorted(CSV_TO_CELL_CLASS)}')
            if stem not in sizes:
                img = cv2.imread(str(images[stem]), cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise ValueError(f'cannot read image {images[stem]}')
                sizes[stem] = (img.shape[1], img.shape[0])
            w, h = sizes[stem]
            x = float(row['nucleus_x']) * w / NATIVE_SIZE[0]
            y = float(row['nucleus_y']) * h / NATIVE_SIZE[1]
            cells.setdefault(stem, []).append(
                (x, y, name, int(row['cell_id'])))
    return cells, skipped


def read_coco_cells(coco_file: Path) -> Dict[str, List[Cell]]:
    """Marked cells per field stem from a COCO file of ``cric_to_coco.py``
    (``annotations[].point`` / ``bethesda_class`` / ``cric_cell_id`` and
    ``images[].other_points``; points are in the image's pixel frame).

    Raises:
        ValueError: A cell without ``point`` or ``bethesda_class``.
    """
    coco = json.loads(Path(coco_file).read_text())
    stems = {im['id']: Path(im['file_name']).stem for im in coco['images']}
    cells: Dict[str, List[Cell]] = {s: [] for s in stems.values()}
    entries = [(a['image_id'], a) for a in coco.get('annotations', [])]
    entries += [(im['id'], p) for im in coco['images']
                for p in im.get('other_points', [])]
    for image_id, a in entries:
        if 'point' not in a or 'bethesda_class' not in a:
            raise ValueError(
                f'{coco_file}: a cell of image {image_id} has no "point" / '
                '"bethesda_class"; write the file with tools/'
                'dataset_converters/cric_to_coco.py')
        name = CSV_TO_CELL_CLASS.get(a['bethesda_class'])
        if name is None:
            raise ValueError(f'{coco_file}: unknown bethesda_class '
                             f"{a['bethesda_class']!r}")
        x, y = a['point']
        cells[stems[image_id]].append(
            (float(x), float(y), name, int(a.get('cric_cell_id', -1))))
    return cells


def window_origins(length: int, size: int, stride: int) -> List[int]:
    """Start coordinates of windows of ``size`` covering ``[0, length)``.

    The last window is shifted inside (ends at ``length``); a ``size`` of 0
    or ``>= length`` gives the one window ``[0, length)``.

    >>> window_origins(688, 256, 256)
    [0, 256, 432]
    """
    if size <= 0 or size >= length:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def cut_rois(cells: Sequence[Cell], width: int, height: int, roi_size: int,
             stride: int, box_px: float, min_cells: int = 1) -> List[Dict]:
    """ROIs of one field with their cells, boxes and label.

    Args:
        cells (Sequence[Cell]): Marked cells ``(x, y, class, id)`` in image
            pixels.
        width (int): Field width.
        height (int): Field height.
        roi_size (int): Window side (0: the whole field).
        stride (int): Window step.
        box_px (float): Cell box side in image pixels.
        min_cells (int): ROIs with fewer marked cells are left out.

    Returns:
        list[dict]: ``window`` ``[x0, y0, w, h]``, ``label`` (ROI class),
        ``cells``: ``[{bbox [x, y, w, h] in ROI pixels (clipped), point,
        cell_class, cric_cell_id}]``.
    """
    pts = np.array([(c[0], c[1]) for c in cells], dtype=np.float64)
    pts = pts.reshape(-1, 2)
    w_roi = width if roi_size <= 0 else min(roi_size, width)
    h_roi = height if roi_size <= 0 else min(roi_size, height)
    rois = []
    for y0 in window_origins(height, h_roi, stride or h_roi):
        for x0 in window_origins(width, w_roi, stride or w_roi):
            inside = ((pts[:, 0] >= x0) & (pts[:, 0] < x0 + w_roi)
                      & (pts[:, 1] >= y0) & (pts[:, 1] < y0 + h_roi))
            idx = np.nonzero(inside)[0]
            if len(idx) < max(min_cells, 1):
                continue
            local = pts[idx] - (x0, y0)
            lo = np.clip(local - box_px / 2, 0, (w_roi, h_roi))
            hi = np.clip(local + box_px / 2, 0, (w_roi, h_roi))
            roi_cells = [
                dict(bbox=[round(float(a), 2) for a in
                           (*lo[k], *(hi[k] - lo[k]))],
                     point=[round(float(v), 2) for v in local[k]],
                     cell_class=cells[i][2], cric_cell_id=cells[i][3])
                for k, i in enumerate(idx)]
            label = roi_label_of([c['cell_class'] for c in roi_cells])
            rois.append(dict(window=[x0, y0, w_roi, h_roi], label=label,
                             cells=roi_cells))
    return rois


def class_agnostic(coco: Dict) -> Dict:
    """The same images and boxes under the one category ``cell`` (id 1)."""
    return dict(
        images=coco['images'],
        annotations=[dict(a, category_id=1) for a in coco['annotations']],
        categories=[dict(id=1, name='cell')])


def split_fields(stems: Sequence[str], ratios: Sequence[float],
                 seed: int) -> Dict[str, List[str]]:
    """Fields -> ``{split: [stem]}`` (disjoint, sorted stems shuffled)."""
    rng = np.random.default_rng([seed, 4242])
    parts = split_items(sorted(stems), ratios, rng)
    return {s: sorted(p) for s, p in zip(SPLITS, parts)}


def build_cric_field_rois(out_dir, data_root: Optional[Path] = None,
                          coco_dir: Optional[Path] = None,
                          img_dir: Optional[Path] = None,
                          roi_size: int = 0, stride: int = 0,
                          box_size: float = 100.0, min_cells: int = 1,
                          split_ratios: Sequence[float] = (0.7, 0.15, 0.15),
                          seed: int = 0, limit: int = 0,
                          force_overwrite: bool = False,
                          progress: bool = True) -> Dict:
    """Write the ROI set (see the module docstring).

    Args:
        out_dir (str | Path): Output folder (empty or absent unless
            ``force_overwrite``).
        data_root (Path, optional): Shared data folder holding
            ``cric_cervix/``; defaults to ``../shared/data``.
        coco_dir (Path, optional): Folder of ``cric_to_coco.py``'s
            ``{train,val,test}.json``: cells and splits from them instead of
            the CSV.
        img_dir (Path, optional): Field images; defaults to
            ``<coco_dir>/../images`` (cric_to_coco.py's layout) with
            ``coco_dir``, else ``<data_root>/cric_cervix/images``.
        roi_size (int): Window side in image pixels (0: whole fields).
        stride (int): Window step (0: ``roi_size``).
        box_size (float): Cell box side in native CRIC pixels.
        min_cells (int): Least marked cells of an ROI.
        split_ratios (Sequence[float]): train / val / test share of fields.
        seed (int): Seed of the field split.
        limit (int): Use only the first ``limit`` fields (sorted; 0 = all).
        force_overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show a progress bar.

    Returns:
        dict: ``{'out_dir', 'meta', 'annotations': {split: Path},
        'counts': {split: {...}}}``.
    """
    t0 = time.time()
    data_root = Path(data_root or SHARED_DATA_ROOT)
    if img_dir is None and coco_dir is not None and \
            (Path(coco_dir).parent / 'images').is_dir():
        # cric_to_coco.py's layout: <out>/annotations/*.json + <out>/images
        # (all fields, the native-only ones included)
        img_dir = Path(coco_dir).parent / 'images'
    img_dir = Path(img_dir or data_root / 'cric_cervix' / 'images')
    if not img_dir.is_dir():
        raise FileNotFoundError(
            f'field images {img_dir} not found; give --data-root (the shared '
            'data folder holding cric_cervix/) or --img-dir')
    if roi_size < 0 or stride < 0 or box_size <= 0 or min_cells < 1:
        raise ValueError('--roi-size and --stride must be >= 0, --box-size '
                         f'> 0, --min-cells >= 1; got {roi_size}, {stride}, '
                         f'{box_size}, {min_cells}')
    if coco_dir is not None:
        cells, splits = {}, {}
        for split in SPLITS:
            part = read_coco_cells(Path(coco_dir) / f'{split}.json')
            cells.update(part)
            splits[split] = sorted(part)
        skipped = 0
    else:
        csv_path = data_root / 'cric_cervix' / 'classifications.csv'
        if not csv_path.is_file():
            raise FileNotFoundError(f'{csv_path} not found (CRIC Cervix '
                                    'classifications.csv)')
        cells, skipped = read_csv_cells(csv_path, img_dir)
        splits = split_fields(list(cells), split_ratios, seed)
    if limit:
        keep = set(sorted(cells)[:limit])
        splits = {s: [t for t in v if t in keep] for s, v in splits.items()}
    out_dir = Path(out_dir).resolve()
    prepare_out_dir(out_dir, force_overwrite, flag='--force-overwrite')
    (out_dir / 'annotations').mkdir(parents=True, exist_ok=True)
    images = {p.stem: p for p in img_dir.iterdir()
              if p.suffix.lower() in ('.jpg', '.jpeg', '.png')}
    result = dict(out_dir=out_dir, meta=out_dir / 'meta.json',
                  annotations={}, counts={})
    bar = tqdm(total=sum(len(v) for v in splits.values()), unit='field',
               desc='CRIC fields -> ROIs', disable=not progress)
    for split in SPLITS:
        split_img_dir = out_dir / 'images' / split
        split_img_dir.mkdir(parents=True, exist_ok=True)
        coco = roi_coco(CELL_CLASSES)
        cat_id = {c: i + 1 for i, c in enumerate(CELL_CLASSES)}
        for stem in splits[split]:
            bar.update(1)
            if stem not in images:
                raise FileNotFoundError(f'no image {stem}.jpg|png in '
                                        f'{img_dir} for field {stem}')
            field = cv2.imread(str(images[stem]), cv2.IMREAD_COLOR)
            if field is None:
                raise ValueError(f'cannot read image {images[stem]}')
            h, w = field.shape[:2]
            box_px = box_size * w / NATIVE_SIZE[0]
            for roi in cut_rois(cells.get(stem, []), w, h, roi_size, stride,
                                box_px, min_cells):
                x0, y0, rw, rh = roi['window']
                whole = (rw, rh) == (w, h)
                name = (f'{stem}{images[stem].suffix.lower()}' if whole
                        else f'{stem}_x{x0}_y{y0}.jpg')
                if whole:
                    shutil.copyfile(images[stem], split_img_dir / name)
                else:
                    cv2.imwrite(str(split_img_dir / name),
                                field[y0:y0 + rh, x0:x0 + rw],
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
                image_id = len(coco['images']) + 1
                coco['images'].append(dict(
                    id=image_id, file_name=name, width=rw, height=rh,
                    roi_label=roi['label'], source_field=stem,
                    window=roi['window']))
                for c in roi['cells']:
                    coco['annotations'].append(dict(
                        id=len(coco['annotations']) + 1, image_id=image_id,
                        category_id=cat_id[c['cell_class']], bbox=c['bbox'],
                        area=round(c['bbox'][2] * c['bbox'][3], 2),
                        iscrowd=0, point=c['point'],
                        cric_cell_id=c['cric_cell_id']))
        ann = out_dir / 'annotations' / f'{split}.json'
        ann.write_text(json.dumps(coco))
        (out_dir / 'annotations' / f'cells_{split}.json').write_text(
            json.dumps(class_agnostic(coco)))
        result['annotations'][split] = ann
        result['counts'][split] = dict(
            fields=len(splits[split]), rois=len(coco['images']),
            rois_per_class=rois_per_class(coco),
            cells=len(coco['annotations']))
    bar.close()
    meta = dict(
        tool='tools/dataset_converters/cric_fields_to_roi_set.py',
        source=str(coco_dir or data_root / 'cric_cervix'),
        roi_size=roi_size, stride=stride, box_size_native=box_size,
        min_cells=min_cells, split_ratios=list(split_ratios), seed=seed,
        csv_rows_without_image=skipped, fields=splits,
        counts=result['counts'], build_seconds=round(time.time() - t0, 2))
    result['meta'].write_text(json.dumps(meta, indent=1))
    return result


__all__ = ['NATIVE_SIZE', 'CSV_TO_CELL_CLASS', 'read_csv_cells',
           'read_coco_cells', 'window_origins', 'cut_rois', 'class_agnostic',
           'split_fields', 'build_cric_field_rois']
