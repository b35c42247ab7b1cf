"""CRIC Cervix point annotations -> COCO detection sets of real fields.

CRIC Cervix (Rezende et al., Sci Data 8:151, 2021) publishes one CSV,
``classifications.csv``, with one row per marked cell::

    image_id, image_filename, image_doi, cell_id, bethesda_system,
    nucleus_x, nucleus_y

``nucleus_x/y`` is the marked nucleus centre in CRIC's native 1376x1020
frame. This module turns those rows into COCO files that cervdet's
detectors, metrics and tools read (the converter
``tools/dataset_converters/cric_to_coco.py`` is its command line):

- coordinates are scaled to each image's real size (any resolution: the
  shared half-size JPEGs, the native PNGs, a user's own resampling);
- each point becomes a square box of a size given in native pixels or in
  micrometres (with the pixel size), clipped to the image; the point itself
  is kept in the annotation (``point``) for the point metric;
- fields are split into train/val/test **per field** with a fixed seed,
  stratified so that every split holds every abnormal class;
- label sets: ``bethesda6`` (NILM and the five abnormal classes),
  ``abnormal5`` (NILM is background; its points are kept in the image's
  ``other_points``), ``binary`` (normal / abnormal).

Nothing is dropped silently: missing images, unknown class names and points
outside their image either raise :class:`CricError` (naming the CSV, the
rows and the fix) or are counted in the returned report, per the caller's
``on_*`` policy.

One module (over 500 lines): the CSV reader, the image matching and the
per-field split are one converter, and much of it names the row, file and
fix of every malformed input.
"""
import csv
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from cervdet.utils.constants import IMG_EXTS

from .classes import BETHESDA6_CLASSES, BETHESDA_CLASSES

#: CRIC's ``bethesda_system`` values -> the short TBS names cervdet uses.
CRIC_TO_TBS: Dict[str, str] = {
    'Negative for intraepithelial lesion': 'NILM',
    'NILM': 'NILM',
    'ASC-US': 'ASC-US',
    'ASC-H': 'ASC-H',
    'LSIL': 'LSIL',
    'HSIL': 'HSIL',
    'SCC': 'SCC',
}
#: Abnormal TBS classes in the order of the COCO ids
#: (:data:`cervdet.datasets.classes.BETHESDA_CLASSES`).
ABNORMAL_TBS: Tuple[str, ...] = BETHESDA_CLASSES
#: Category names of each label set, in COCO id order (id = index + 1).
LABEL_SETS: Dict[str, Tuple[str, ...]] = {
    'bethesda6': BETHESDA6_CLASSES,
    'abnormal5': ABNORMAL_TBS,
    'binary': ('normal', 'abnormal'),
}
#: CRIC's native image frame (width, height) in which the CSV's points lie.
CRIC_NATIVE_SIZE: Tuple[int, int] = (1376, 1020)
#: Default box side in native CRIC pixels: about twice a normal intermediate
#: nucleus (40-50 native px): the nucleus and its perinuclear cytoplasm, the
#: region CRIC-based cell classifiers crop (100x100 native px).
DEFAULT_BOX_SIZE_PX: float = 100.0
REQUIRED_COLUMNS = ('image_id', 'image_filename', 'cell_id',
                    'bethesda_system', 'nucleus_x', 'nucleus_y')
SPLITS = ('train', 'val', 'test')


class CricError(ValueError):
    """A CRIC CSV or image folder that cannot be converted as it is."""


@dataclass
class CricCell:
    """One marked cell: a row of ``classifications.csv``."""
    row: int  # 1-based line number in the CSV (header = line 1)
    image_id: int
    stem: str
    cell_id: int
    tbs: str
    x: float  # native frame
    y: float


@dataclass
class CricReport:
    """What a conversion counted (printed by the converter)."""
    rows: int = 0
    fields: int = 0
    missing_images: List[str] = field(default_factory=list)
    unknown_classes: Counter = field(default_factory=Counter)
    outside_points: List[Tuple[str, int, float, float]] = field(
        default_factory=list)
    clipped_boxes: int = 0
    boxes: Counter = field(default_factory=Counter)  # class -> count
    other_points: Counter = field(default_factory=Counter)
    split_fields: Dict[str, int] = field(default_factory=dict)
    split_classes: Dict[str, Counter] = field(default_factory=dict)

    def lines(self) -> List[str]:
        out = [f'{self.rows} rows, {self.fields} fields converted']
        if self.missing_images:
            out.append(f'{len(self.missing_images)} fields skipped, image not '
                       f'found: {", ".join(self.missing_images[:5])}' +
                       (' ...' if len(self.missing_images) > 5 else ''))
        if self.unknown_classes:
            out.append('rows skipped, unknown class: ' + ', '.join(
                f'{k!r} x{v}' for k, v in self.unknown_classes.items()))
        if self.outside_points:
            ex = ', '.join(f'{s} cell {c} ({x:.0f}, {y:.0f})'
                           for s, c, x, y in self.outside_points[:3])
            out.append(f'{len(self.outside_points)} points outside their '
                       f'image skipped: {ex}')
        out.append(f'{self.clipped_boxes} boxes clipped to their image')
        out.append('boxes per class: ' + ', '.join(
            f'{k} {v}' for k, v in sorted(self.boxes.items())))
        if self.other_points:
            out.append('marked cells kept as other_points (background in '
                       'this label set): ' + ', '.join(
                           f'{k} {v}' for k, v in self.other_points.items()))
        for split, n in self.split_fields.items():
            cls = self.split_classes.get(split, Counter())
            out.append(f'{split}: {n} fields; cells ' + ', '.join(
                f'{k} {cls.get(k, 0)}' for k in ('NILM', ) + ABNORMAL_TBS))
        return out


def read_cric_csv(csv_path: str,
                  on_unknown_class: str = 'error',
                  report: Optional[CricReport] = None) -> List[CricCell]:
    """Read CRIC's ``classifications.csv``.

    Args:
        csv_path (str): The CSV.
        on_unknown_class (str): ``'error'`` (default) or ``'warn'`` (skip
            and count the row) for a ``bethesda_system`` value that is not
            one of :data:`CRIC_TO_TBS`.
        report (CricReport, optional): Receives the counts.

    Returns:
        list[CricCell]: One per valid row, in file order.

    Raises:
        CricError: Missing file or columns, an empty file, non-numeric
            coordinates or ids, unknown classes with ``on_unknown_class=
            'error'``.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise CricError(f'{path}: CRIC CSV not found. Fix: pass the '
                        '`classifications.csv` of the CRIC Cervix collection '
                        '(--csv).')
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise CricError(
                f'{path}: columns {missing} missing (found '
                f'{reader.fieldnames}). Fix: use CRIC\'s classifications.csv '
                f'with the columns {list(REQUIRED_COLUMNS)}.')
        raw = list(reader)
    if not raw:
        raise CricError(f'{path}: no rows. Fix: the CSV must list one marked '
                        'cell per row.')
    report = report if report is not None else CricReport()
    cells, unknown_rows = [], defaultdict(list)
    for i, r in enumerate(raw, start=2):
        name = (r['bethesda_system'] or '').strip()
        if name not in CRIC_TO_TBS:
            unknown_rows[name].append(i)
            continue
        try:
            cell = CricCell(
                row=i,
                image_id=int(r['image_id']),
                stem=Path(r['image_filename'].strip()).stem,
                cell_id=int(r['cell_id']),
                tbs=CRIC_TO_TBS[name],
                x=float(r['nucleus_x']),
                y=float(r['nucleus_y']))
        except (TypeError, ValueError) as e:
            raise CricError(
                f'{path}, line {i}: cannot read image_id/cell_id/nucleus_x/'
                f'nucleus_y ({e}). Fix: ids are integers, coordinates '
                'numbers.') from e
        if not (math.isfinite(cell.x) and math.isfinite(cell.y)):
            raise CricError(f'{path}, line {i}: nucleus_x/nucleus_y is not a '
                            'finite number.')
        cells.append(cell)
    if unknown_rows:
        desc = '; '.join(f'{k!r} on lines {v[:5]}' +
                         (' ...' if len(v) > 5 else '')
                         for k, v in unknown_rows.items())
        if on_unknown_class == 'error':
            raise CricError(
                f'{path}: unknown bethesda_system value(s): {desc}. Known: '
                f'{sorted(CRIC_TO_TBS)}. Fix: correct the rows, or pass '
                '--on-unknown-class warn to skip (and count) them.')
        for k, v in unknown_rows.items():
            report.unknown_classes[k] += len(v)
    report.rows += len(cells)
    return cells


def find_images(stems: Sequence[str],
                img_dirs: Sequence[str]) -> Dict[str, Path]:
    """The image file of each field stem: the first ``<dir>/<stem>.<ext>``
    found, trying the folders in order (e.g. half-size JPEGs, then native
    PNGs). Stems without a file are absent from the result."""
    found: Dict[str, Path] = {}
    for d in img_dirs:
        d = Path(d)
        if not d.is_dir():
            raise CricError(f'{d}: image folder not found (--img-dir). Fix: '
                            'point it at the folder of CRIC images.')
        by_stem = {
            p.stem: p
            for p in sorted(d.iterdir())
            if p.suffix.lower() in IMG_EXTS
        }
        for s in stems:
            if s not in found and s in by_stem:
                found[s] = by_stem[s]
    return found


def image_size(path: Path) -> Tuple[int, int]:
    """(width, height) from the file header; a clear error if unreadable."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise CricError(f'{path}: cannot be read as an image ({e}). Fix: '
                        're-download it or remove its rows.') from e


def points_to_boxes(points: np.ndarray, box_size: np.ndarray,
                    width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Square boxes centred on points, clipped to the image.

    Args:
        points (np.ndarray): ``[N, 2]`` (x, y) in image pixels.
        box_size (np.ndarray | float): Side length(s) in image pixels,
            scalar or ``[N]``.
        width (int): Image width.
        height (int): Image height.

    Returns:
        tuple: ``boxes`` ``[N, 4]`` (x1, y1, x2, y2) clipped to
        ``[0, width] x [0, height]``, and ``clipped`` ``[N]`` bool.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    half = np.broadcast_to(np.asarray(box_size, dtype=np.float64),
                           (len(points), )) / 2
    raw = np.concatenate([points - half[:, None], points + half[:, None]], 1)
    lim = np.array([width, height, width, height], dtype=np.float64)
    boxes = np.clip(raw, 0, lim)
    clipped = np.any(boxes != raw, axis=1)
    return boxes, clipped


def stratified_field_split(field_classes: Dict[str, Sequence[str]],
                           fractions: Sequence[float] = (0.7, 0.15, 0.15),
                           seed: int = 0,
                           required: Sequence[str] = ABNORMAL_TBS
                           ) -> Dict[str, str]:
    """Assign whole fields to train/val/test, stratified by class.

    Iterative stratification (Sechidis et al., ECML 2011) over fields:
    the classes are taken from the rarest (fewest fields) to the most
    common; each field holding the class and not yet assigned goes to the
    split whose share of that class's fields is furthest below its target
    (ties: the split furthest below its target share of all fields, then a
    seeded random choice). Fields without any ``required`` class are split
    by the fractions at the end. The result is deterministic for a seed.

    Args:
        field_classes (dict): Field stem -> the classes marked in it.
        fractions (Sequence[float]): train, val, test shares (sum 1).
        seed (int): Random seed.
        required (Sequence[str]): Classes every split must hold.

    Returns:
        dict: Field stem -> ``'train' | 'val' | 'test'``.

    Raises:
        CricError: A required class lies in fewer fields than there are
            non-empty splits, so no per-field split can hold it everywhere.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if len(fractions) != len(SPLITS) or np.any(fractions < 0) or \
            not np.isclose(fractions.sum(), 1.0):
        raise CricError(f'split fractions must be 3 non-negative numbers '
                        f'summing to 1, got {list(fractions)}')
    rng = random.Random(seed)
    fields_of: Dict[str, List[str]] = defaultdict(list)
    for stem in sorted(field_classes):
        for c in set(field_classes[stem]):
            fields_of[c].append(stem)
    n_splits = int((fractions > 0).sum())
    too_rare = {c: len(fields_of.get(c, [])) for c in required
                if len(fields_of.get(c, [])) < n_splits}
    if too_rare:
        raise CricError(
            f'classes {too_rare} are marked in fewer fields than the '
            f'{n_splits} splits: no per-field split can put each in every '
            'split. Fix: use more fields (the full CRIC download), fewer '
            'splits, or a label set without these classes.')
    total = len(field_classes)
    assigned: Dict[str, str] = {}
    count_all = np.zeros(len(SPLITS))

    def pick(need: np.ndarray) -> int:
        need = np.where(fractions > 0, need, -np.inf)
        best = np.flatnonzero(np.isclose(need, need.max()))
        if len(best) > 1:
            gap = fractions[best] * total - count_all[best]
            best = best[np.isclose(gap, gap.max())]
        return int(best[rng.randrange(len(best))])

    order = sorted(required, key=lambda c: (len(fields_of[c]), c))
    for c in order:
        stems = [s for s in fields_of[c] if s not in assigned]
        rng.shuffle(stems)
        have = np.array([
            sum(1 for s in fields_of[c] if assigned.get(s) == sp)
            for sp in SPLITS
        ], dtype=np.float64)
        n_c = len(fields_of[c])
        for s in stems:
            # A split still missing the class comes first.
            need = fractions * n_c - have + 1e6 * ((have == 0) & (
                fractions > 0))
            k = pick(need)
            assigned[s] = SPLITS[k]
            have[k] += 1
            count_all[k] += 1
    rest = sorted(s for s in field_classes if s not in assigned)
    rng.shuffle(rest)
    for s in rest:
        k = pick(fractions * total - count_all)
        assigned[s] = SPLITS[k]
        count_all[k] += 1
    return assigned


def _category_of(tbs: str, label_set: str) -> Optional[str]:
    """Category name of a TBS class in a label set (None: background)."""
    if label_set == 'bethesda6':
        return tbs
    if label_set == 'abnormal5':
        return None if tbs == 'NILM' else tbs
    if label_set == 'binary':
        return 'normal' if tbs == 'NILM' else 'abnormal'
    raise CricError(f'unknown label set {label_set!r}; choose one of '
                    f'{sorted(LABEL_SETS)}')


def build_cric_coco(csv_path: str,
                    img_dirs: Sequence[str],
                    label_set: str = 'abnormal5',
                    box_size: float = DEFAULT_BOX_SIZE_PX,
                    box_unit: str = 'px',
                    um_per_px: Optional[float] = None,
                    source_size: Tuple[int, int] = CRIC_NATIVE_SIZE,
                    fractions: Sequence[float] = (0.7, 0.15, 0.15),
                    seed: int = 0,
                    on_missing_image: str = 'warn',
                    on_unknown_class: str = 'error',
                    on_outside_point: str = 'warn'
                    ) -> Tuple[Dict[str, dict], Dict[str, Path], CricReport]:
    """Convert CRIC's CSV into COCO dicts, one per split.

    Args:
        csv_path (str): CRIC's ``classifications.csv``.
        img_dirs (Sequence[str]): Folders searched in order for
            ``<stem>.<ext>`` of each field.
        label_set (str): One of :data:`LABEL_SETS`.
        box_size (float): Box side, in native CRIC pixels (``box_unit='px'``)
            or micrometres (``'um'``, needs ``um_per_px``).
        box_unit (str): ``'px'`` (native pixels) or ``'um'``.
        um_per_px (float, optional): Native pixel size in micrometres;
            written into each image (``um_per_px`` of that image's pixels)
            when given.
        source_size (tuple[int, int]): (width, height) of the frame the
            CSV's points are in (CRIC: 1376x1020).
        fractions (Sequence[float]): train/val/test shares of the fields.
        seed (int): Split seed.
        on_missing_image (str): ``'warn'`` (skip and count the field) or
            ``'error'``.
        on_unknown_class (str): ``'error'`` or ``'warn'``.
        on_outside_point (str): ``'warn'`` (skip and count) or ``'error'``
            for a point outside its image after scaling.

    Returns:
        tuple: ``{split: coco_dict}``, ``{stem: image_path}`` of the fields
        used, and the :class:`CricReport`.
    """
    if label_set not in LABEL_SETS:
        raise CricError(f'unknown label set {label_set!r}; choose one of '
                        f'{sorted(LABEL_SETS)}')
    if box_unit not in ('px', 'um'):
        raise CricError(f"box_unit must be 'px' or 'um', got {box_unit!r}")
    if box_unit == 'um' and not um_per_px:
        raise CricError('a box size in micrometres needs the native pixel '
                        'size: pass --um-per-px (CRIC\'s CSV does not state '
                        'it), or give the box size in native pixels.')
    if box_size <= 0:
        raise CricError(f'box size must be positive, got {box_size}')
    native_box = box_size / um_per_px if box_unit == 'um' else box_size
    report = CricReport()
    cells = read_cric_csv(csv_path, on_unknown_class, report)
    by_field: Dict[str, List[CricCell]] = defaultdict(list)
    for c in cells:
        by_field[c.stem].append(c)
    paths = find_images(sorted(by_field), img_dirs)
    missing = sorted(s for s in by_field if s not in paths)
    if missing:
        if on_missing_image == 'error':
            raise CricError(
                f'{len(missing)} fields of {csv_path} have no image in '
                f'{list(map(str, img_dirs))}: {missing[:5]}. Fix: add the '
                'images, another --img-dir, or --on-missing-image warn to '
                'skip (and count) them.')
        report.missing_images = missing
    stems = sorted(paths)
    report.fields = len(stems)
    cats = LABEL_SETS[label_set]
    cat_id = {n: i + 1 for i, n in enumerate(cats)}
    field_classes = {s: [c.tbs for c in by_field[s]] for s in stems}
    required = ABNORMAL_TBS
    split_of = stratified_field_split(field_classes, fractions, seed,
                                      required)
    cocos = {
        sp: dict(
            info=dict(
                description=f'CRIC Cervix fields, label set {label_set}, '
                f'{sp} split (seed {seed}), boxes of {native_box:g} native '
                'px around marked nuclei (cervdet cric_to_coco)'),
            images=[], annotations=[],
            categories=[dict(id=cat_id[n], name=n) for n in cats])
        for sp in SPLITS
    }
    ann_id = 1
    for img_id, stem in enumerate(stems, start=1):
        w, h = image_size(paths[stem])
        sx, sy = w / source_size[0], h / source_size[1]
        field_cells = by_field[stem]
        pts = np.array([[c.x * sx, c.y * sy] for c in field_cells])
        inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (
            pts[:, 1] <= h)
        if not inside.all():
            bad = [(stem, field_cells[i].cell_id, field_cells[i].x,
                    field_cells[i].y) for i in np.flatnonzero(~inside)]
            if on_outside_point == 'error':
                rows = [field_cells[i].row for i in np.flatnonzero(~inside)]
                raise CricError(
                    f'{csv_path}, lines {rows[:5]}: nucleus points outside '
                    f'their image {paths[stem]} ({w}x{h} px; CSV frame '
                    f'{source_size[0]}x{source_size[1]}). Fix: check '
                    '--source-size, or --on-outside-point warn to skip them.')
            report.outside_points.extend(bad)
        # Box side in this image's pixels (native px scaled by the mean
        # of the two scale factors; CRIC keeps the aspect ratio).
        side = native_box * (sx + sy) / 2
        boxes, clipped = points_to_boxes(pts, side, w, h)
        img = dict(id=img_id, file_name=paths[stem].name, width=w, height=h,
                   cric_image_id=field_cells[0].image_id,
                   source_size=list(source_size), other_points=[])
        if um_per_px:
            img['um_per_px'] = um_per_px * 2 / (sx + sy)
        coco = cocos[split_of[stem]]
        for i, c in enumerate(field_cells):
            if not inside[i]:
                continue
            name = _category_of(c.tbs, label_set)
            point = [round(float(pts[i, 0]), 2), round(float(pts[i, 1]), 2)]
            if name is None:
                img['other_points'].append(
                    dict(point=point, bethesda_class=c.tbs,
                         cric_cell_id=c.cell_id))
                report.other_points[c.tbs] += 1
                continue
            x1, y1, x2, y2 = (round(float(v), 2) for v in boxes[i])
            coco['annotations'].append(
                dict(id=ann_id, image_id=img_id, category_id=cat_id[name],
                     bbox=[x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                     area=round((x2 - x1) * (y2 - y1), 2), iscrowd=0,
                     point=point, cric_cell_id=c.cell_id,
                     bethesda_class=c.tbs))
            ann_id += 1
            report.boxes[name] += 1
            report.clipped_boxes += int(clipped[i])
        coco['images'].append(img)
    for sp in SPLITS:
        report.split_fields[sp] = len(cocos[sp]['images'])
        report.split_classes[sp] = Counter(
            c.tbs for s in stems if split_of[s] == sp for c in by_field[s])
    return cocos, {s: paths[s] for s in stems}, report
