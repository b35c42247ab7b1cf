"""Validation of COCO detection files: the one implementation behind
:class:`~cervdet.datasets.CervicalCocoDataset` (which checks its file when it
is loaded) and ``tools/dataset_converters/check_coco.py`` (the command line).

Annotation checks (ids, categories, boxes) are vectorised with numpy, so a
file with hundreds of thousands of cell boxes is checked in about a second.
Image files are checked one by one: existence, then optionally the header
(readable, size as in the file) or a full decode.

One module (over 500 lines): every check names the file, field and fix;
the error texts and their formatting are about half of it.
"""
import json
import os
from collections import defaultdict
from itertools import chain, compress
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

from cervdet.utils.constants import IMG_EXTS

#: Keys every image / annotation / category entry needs.
REQUIRED_KEYS: Dict[str, Tuple[str, ...]] = dict(
    image=('id', 'file_name', 'width', 'height'),
    annotation=('id', 'image_id', 'category_id', 'bbox'),
    category=('id', 'name'))

#: How an example names the ``id`` of an entry (duplicates are
#: ``duplicate_<name>``).
ID_FIELDS: Dict[str, str] = dict(
    image='image_id', annotation='ann_id', category='category_id')

#: Problem code -> (severity, title, how to fix), in report order.
PROBLEMS: Dict[str, Tuple[str, str, str]] = {
    'invalid_json': ('error', 'file is not valid JSON / not a COCO dict',
                     'regenerate the file; check it is a dict with "images", '
                     '"annotations" and "categories"'),
    'empty_file': ('error', 'no images in the file',
                   'point to the right file or rebuild it (the converter '
                   'found no images: check its input paths); an image '
                   'without boxes is fine, a file without images is not'),
    'missing_key': ('error', 'required key or field missing',
                    'every image needs id/file_name/width/height, every '
                    'annotation id/image_id/category_id/bbox, every category '
                    'id/name'),
    'duplicate_image_id': ('error', 'duplicate image ids',
                           'give every image a unique id (re-number them)'),
    'duplicate_ann_id': ('error', 'duplicate annotation ids',
                         'give every annotation a unique id (re-number them)'),
    'duplicate_category_id': ('error', 'duplicate category ids',
                              'give every category a unique id'),
    'unknown_class': ('error', 'category name not among the classes',
                      'add the names to the classes (config: metainfo=dict('
                      'classes=(...)); command line: --classes), or drop '
                      'them (dataset: unknown_classes="ignore")'),
    'no_known_class': ('error', 'no category name is among the classes',
                       'set the classes (metainfo=dict(classes=...)) to the '
                       'names of the file\'s categories'),
    'missing_image': ('error', 'image file not found',
                      'check the image folder (IMG_DIR / data_prefix) and '
                      '"file_name"; if file_name lacks the extension add it '
                      'with --file-suffix .jpg (dataset: file_suffix=".jpg")'),
    'unreadable_image': ('error', 'image file unreadable or corrupt',
                         're-export or re-download these files, or drop them '
                         'and their annotations'),
    'size_mismatch': ('error', 'width/height differ from the image file',
                      'write the true size of the file into the image entry '
                      '(boxes may be in another resolution too)'),
    'unknown_image_id': ('error', 'annotation points to an unknown image id',
                         'drop these annotations or add the missing image '
                         'entries'),
    'unknown_category_id': ('error', 'annotation has an unknown category id',
                            'add the category to "categories" or fix the '
                            'annotation\'s "category_id"'),
    'bad_bbox': ('error', 'bbox is not 4 finite numbers',
                 'write "bbox" as [x, y, width, height] numbers, or drop '
                 'these annotations'),
    'degenerate_bbox': ('error', 'degenerate box (w or h <= 0)',
                        'drop these annotations or fix the converter (COCO '
                        'bbox is [x, y, width, height], not corners)'),
    'bbox_outside_image': ('error', 'box outside the image',
                           'clip boxes to the image or fix the converter '
                           '(wrong image size, or corners written as '
                           'width/height)'),
    'duplicate_file_name': ('warning', 'several image entries share a '
                            'file_name',
                            'merge the entries (one image entry per file)'),
}

PathLike = Union[str, os.PathLike]


class _Report:
    """Collects problems: all counted, the first ``max_examples`` kept."""

    def __init__(self, max_examples: int) -> None:
        self.max_examples = max_examples
        self.counts: Dict[str, int] = {}
        self.examples: Dict[str, List[Dict]] = defaultdict(list)

    def add(self, code: str, **example: Any) -> None:
        """Record one problem of kind ``code`` with its details."""
        self.add_rows(code, [0], lambda _: example)

    def add_rows(self, code: str, rows: Sequence[int],
                 example: Callable[[int], Dict]) -> None:
        """Record problem ``code`` once per entry of ``rows``.

        Args:
            code (str): Key of :data:`PROBLEMS`.
            rows (Sequence[int]): Indices of the faulty entries.
            example (Callable[[int], dict]): Details of the entry of a row;
                called for the first few rows only.
        """
        if len(rows) == 0:
            return
        self.counts[code] = self.counts.get(code, 0) + len(rows)
        room = max(self.max_examples - len(self.examples[code]), 0)
        self.examples[code].extend(example(int(i)) for i in rows[:room])

    def finish(self, stats: Dict) -> Dict:
        """Assemble the report dict from collected problems and ``stats``."""
        by_severity: Dict[str, Dict[str, int]] = dict(error={}, warning={})
        for code, n in self.counts.items():
            by_severity[PROBLEMS[code][0]][code] = n
        return dict(
            ok=not by_severity['error'],
            errors=by_severity['error'],
            warnings=by_severity['warning'],
            examples={c: ex for c, ex in self.examples.items() if ex},
            stats=stats)


def _load(ann_file: Union[PathLike, Dict]) -> Tuple[Optional[Dict], str]:
    """The COCO dict of ``ann_file`` and, when it is unusable, why."""
    if isinstance(ann_file, dict):
        return ann_file, ''
    try:
        data = json.loads(Path(ann_file).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, str(e)
    if not isinstance(data, dict):
        return None, f'the top level is a {type(data).__name__}, not a dict'
    return data, ''


def image_size(path: PathLike, decode: bool = False) -> Optional[tuple]:
    """``(width, height)`` of an image file, ``None`` if unreadable.

    Args:
        path (str | PathLike): Image file.
        decode (bool): Decode all pixels (finds truncated/corrupt files);
            otherwise read only the header.

    Returns:
        tuple[int, int] | None: Size, or ``None`` when it cannot be read.
    """
    try:
        with Image.open(path) as im:
            if decode:
                im.load()  # raises on truncated data, unlike cv2.imread
            return im.size
    except Exception:  # noqa: BLE001 - any failure means unreadable
        return None


def _numeric(values: Sequence) -> Optional[np.ndarray]:
    """``values`` as a 1-d numeric array, ``None`` if they are not numbers."""
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged nested lists
        return None
    return arr if arr.ndim == 1 and arr.dtype.kind in 'iuf' else None


def _id_keys(*columns: Sequence) -> List[np.ndarray]:
    """Id columns as arrays that numpy can sort and compare with each other.

    Args:
        *columns (Sequence): Ids (e.g. image ids, and the annotations'
            ``image_id``).

    Returns:
        list[np.ndarray]: The numbers when every id is a number, otherwise
        their ``repr`` (so ``1`` and ``'1'`` differ and ``None`` is allowed).
    """
    arrays = [_numeric(c) if len(c) else np.zeros(0) for c in columns]
    if all(a is not None for a in arrays):
        return arrays
    return [np.array([repr(v) for v in c], dtype=str) for c in columns]


def _duplicates(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row of the first occurrence of every repeated key (in file order) and
    how often each occurs."""
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    first, counts = first[counts > 1], counts[counts > 1]
    order = np.argsort(first)
    return first[order], counts[order]


def _report_duplicates(rep: _Report, code: str, field: str,
                       values: Sequence) -> None:
    """Report every value of ``values`` that occurs more than once."""
    if not len(values):
        return
    first, counts = _duplicates(_id_keys(values)[0])
    rep.add_rows(code, range(len(first)),
                 lambda j: {field: values[first[j]], 'times': int(counts[j])})


def _lookup(keys: np.ndarray,
            queries: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row of ``keys`` holding each query (the first one) and whether found."""
    if len(keys) == 0:
        return (np.zeros(len(queries), dtype=int),
                np.zeros(len(queries), dtype=bool))
    order = np.argsort(keys, kind='stable')
    pos = np.searchsorted(keys[order], queries).clip(max=len(keys) - 1)
    rows = order[pos]
    return rows, keys[rows] == queries


#: Types of the numbers a box may hold (``bool`` is not one of them).
_REAL_TYPES = frozenset((int, float, np.int32, np.int64, np.float32,
                         np.float64))


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a real number."""
    return float(value) if type(value) in _REAL_TYPES else np.nan


def _boxes(bboxes: Sequence) -> np.ndarray:
    """``(n, 4)`` float array of COCO boxes; NaN where a box is not a list of
    4 or a value not a real number."""
    out = np.full((len(bboxes), 4), np.nan)
    rows = np.flatnonzero(
        [isinstance(b, (list, tuple)) and len(b) == 4 for b in bboxes])
    # the values of all 4-lists in one flat list, typed without a Python loop
    flat = list(chain.from_iterable(map(bboxes.__getitem__, rows)))
    real = list(map(_REAL_TYPES.__contains__, map(type, flat)))
    values = np.full(len(flat), np.nan)
    values[np.array(real, dtype=bool)] = np.fromiter(
        compress(flat, real), dtype=float)
    out[rows] = values.reshape(-1, 4)
    return out


def _check_entries(rep: _Report, items: Sequence,
                   kind: str) -> Tuple[List[Dict], np.ndarray]:
    """The dict entries of a list, reporting entries that lack a required key
    (non-dict entries are reported and left out) and duplicate ids.

    Args:
        rep (_Report): Where problems go.
        items (Sequence): Entries of ``images``, ``annotations`` or
            ``categories``.
        kind (str): ``'image'``, ``'annotation'`` or ``'category'`` (key of
            :data:`REQUIRED_KEYS`).

    Returns:
        tuple[list[dict], np.ndarray]: The dict entries, and which required
        key each has (bool, ``(len(entries), len(REQUIRED_KEYS[kind]))``).
    """
    keys = REQUIRED_KEYS[kind]
    entries = [x for x in items if isinstance(x, dict)]
    others = [x for x in items if not isinstance(x, dict)]
    rep.add_rows('missing_key', range(len(others)),
                 lambda j: {'where': kind, kind: str(others[j])[:80],
                            'key': list(keys)})
    complete = np.fromiter(map(frozenset(keys).issubset, entries),
                           dtype=bool, count=len(entries))
    has = np.ones((len(entries), len(keys)), dtype=bool)
    incomplete = np.flatnonzero(~complete)
    for i in incomplete:
        has[i] = [k in entries[i] for k in keys]
    rep.add_rows(
        'missing_key', incomplete, lambda i: {
            'where': kind,
            kind: str(entries[i])[:80],
            'key': [k for k, h in zip(keys, has[i]) if not h]
        })
    ids = [x['id'] for x, has_id in zip(entries, has[:, 0]) if has_id]
    _report_duplicates(rep, f'duplicate_{ID_FIELDS[kind]}', ID_FIELDS[kind],
                       ids)
    return entries, has


def _check_categories(rep: _Report, cats: Sequence,
                      classes: Optional[Sequence[str]]) -> Dict[Any, str]:
    """Check ``categories`` (ids, and names against ``classes``).

    Returns:
        dict: Category id -> name.
    """
    cats, has = _check_entries(rep, cats, 'category')
    cats = [c for c, has_id in zip(cats, has[:, 0]) if has_id]
    cat_name = {c['id']: str(c.get('name', c['id'])) for c in cats}
    if classes is not None:
        names = set(cat_name.values())
        unknown = [(i, n) for i, n in cat_name.items() if n not in classes]
        rep.add_rows('unknown_class', range(len(unknown)),
                     lambda j: dict(name=unknown[j][1],
                                    category_id=unknown[j][0]))
        if names and not names & set(classes):
            rep.add('no_known_class', file_classes=sorted(names),
                    classes=list(classes))
    return cat_name


def _check_image_file(rep: _Report, img: Dict, img_dir: Path,
                      file_suffix: str, read_images: bool,
                      check_images: bool) -> None:
    """Check the file of one image entry: exists, readable, right size."""
    name = str(img['file_name'])
    if file_suffix and not name.endswith(file_suffix):
        name += file_suffix
    path = img_dir / name
    if not path.is_file():
        found = [e for e in IMG_EXTS if (img_dir / (name + e)).is_file()]
        hint = dict(hint=f'{name}{found[0]} exists: use --file-suffix '
                    f'{found[0]} (dataset: file_suffix="{found[0]}")'
                    ) if found else {}
        rep.add('missing_image', image_id=img['id'], file_name=name, **hint)
        return
    if not read_images:
        return
    size = image_size(path, decode=check_images)
    if size is None:
        rep.add('unreadable_image', image_id=img['id'], file_name=name)
    elif 'width' in img and 'height' in img and \
            tuple(size) != (img['width'], img['height']):
        rep.add('size_mismatch', image_id=img['id'], file_name=name,
                json_wh=[img['width'], img['height']], file_wh=list(size))


def _check_images(rep: _Report, images: Sequence,
                  img_dir: Optional[PathLike], file_suffix: str,
                  read_images: bool, check_images: bool,
                  progress: bool) -> List[Dict]:
    """Check the ``images`` entries (ids, file names) and their files.

    Returns:
        list[dict]: The image entries that have an id.
    """
    entries, has = _check_entries(rep, images, 'image')
    with_id = [img for img, has_id in zip(entries, has[:, 0]) if has_id]
    _report_duplicates(rep, 'duplicate_file_name', 'file_name',
                       [img['file_name'] for img in entries
                        if 'file_name' in img])
    if img_dir is None or '://' in str(img_dir):  # remote: not checked
        return with_id
    img_dir = Path(img_dir)
    for img in tqdm(with_id, desc='images', unit='img', disable=not progress):
        if 'file_name' in img:
            _check_image_file(rep, img, img_dir, file_suffix,
                              read_images, check_images)
    return with_id


def _check_annotations(rep: _Report, anns: Sequence, images: List[Dict],
                       cat_name: Dict[Any, str],
                       tolerance: float) -> Dict[str, Any]:
    """Check the ``annotations`` (ids, references, boxes), vectorised.

    Args:
        rep (_Report): Where problems go.
        anns (Sequence): The ``annotations`` list.
        images (list[dict]): Image entries with an id.
        cat_name (dict): Category id -> name.
        tolerance (float): Pixels a box may leave its image.

    Returns:
        dict: ``images_without_boxes`` and ``boxes_per_class`` (statistics).
    """
    anns, has_keys = _check_entries(rep, anns, 'annotation')
    has = dict(zip(REQUIRED_KEYS['annotation'], has_keys.T))

    img_keys, ann_img = _id_keys([img['id'] for img in images],
                                 [a.get('image_id') for a in anns])
    img_row, known_img = _lookup(img_keys, ann_img)
    cat_ids = list(cat_name)
    cat_keys, ann_cat = _id_keys(cat_ids, [a.get('category_id') for a in anns])
    cat_row, known_cat = _lookup(cat_keys, ann_cat)

    def where(i: int) -> Dict:
        img = images[img_row[i]] if known_img[i] else {}
        return dict(ann_id=anns[i].get('id'), image_id=anns[i].get('image_id'),
                    file_name=img.get('file_name'))

    rep.add_rows('unknown_image_id',
                 np.flatnonzero(has['image_id'] & ~known_img), where)
    rep.add_rows(
        'unknown_category_id',
        np.flatnonzero(has['category_id'] & ~known_cat),
        lambda i: dict(category_id=anns[i].get('category_id'), **where(i)))

    boxes = _boxes([a.get('bbox') for a in anns])
    x, y, w, h = boxes.T
    bad = has['bbox'] & ~np.isfinite(boxes).all(1)
    with np.errstate(invalid='ignore'):
        degenerate = has['bbox'] & ~bad & ((w <= 0) | (h <= 0))
        img_wh = np.array([[_number(img.get('width')),
                            _number(img.get('height'))] for img in images],
                          dtype=float).reshape(-1, 2)
        wh = np.where(known_img[:, None], img_wh[img_row], np.nan) \
            if len(images) else np.full((len(anns), 2), np.nan)
        sized = has['bbox'] & ~bad & ~degenerate & np.isfinite(wh).all(1)
        outside = sized & (
            (x < -tolerance) | (y < -tolerance) |
            (x + w > wh[:, 0] + tolerance) | (y + h > wh[:, 1] + tolerance))

    def with_box(i: int) -> Dict:
        return dict(where(i), bbox=anns[i]['bbox'])

    rep.add_rows('bad_bbox', np.flatnonzero(bad), with_box)
    rep.add_rows('degenerate_bbox', np.flatnonzero(degenerate), with_box)
    rep.add_rows(
        'bbox_outside_image', np.flatnonzero(outside), lambda i: dict(
            with_box(i),
            image_wh=[images[img_row[i]]['width'],
                      images[img_row[i]]['height']]))

    per_class: Dict[str, int] = {name: 0 for name in cat_name.values()}
    rows, counts = np.unique(cat_row[known_cat], return_counts=True)
    for r, n in zip(rows, counts):
        per_class[cat_name[cat_ids[r]]] += int(n)
    n_img_ids = len(np.unique(img_keys))
    return dict(
        images_without_boxes=n_img_ids - len(np.unique(img_row[known_img])),
        boxes_per_class=per_class)


def check_coco(ann_file: Union[PathLike, Dict],
               img_dir: Optional[PathLike] = None,
               file_suffix: str = '',
               check_images: bool = False,
               tolerance: float = 1.0,
               max_examples: int = 5,
               progress: bool = False,
               classes: Optional[Sequence[str]] = None,
               read_images: bool = True) -> Dict:
    """Validate a COCO detection file (and its images when ``img_dir`` is
    given).

    Problems (codes of :data:`PROBLEMS`): invalid JSON, no images, missing
    keys, duplicate image / annotation / category ids, category names not in
    ``classes`` or none of them in it, missing, unreadable or wrongly sized
    image files, annotations of unknown images or categories, boxes that are
    not 4 finite numbers, degenerate or outside their image; duplicate file
    names are a warning.

    Args:
        ann_file (str | PathLike | dict): COCO JSON file, or its already
            loaded dict (``images``, ``annotations``, ``categories``).
        img_dir (str | PathLike, optional): Folder ``file_name`` is relative
            to; ``None`` (or a URL) skips all image file checks.
        file_suffix (str): Appended to ``file_name`` when it does not already
            end with it (e.g. ``'.jpg'`` for CCAgT, whose names lack it).
        check_images (bool): Fully decode every image (slower; finds
            truncated files). Without it only the header is read.
        tolerance (float): Pixels a box may leave its image.
        max_examples (int): Examples kept per problem kind.
        progress (bool): Show a progress bar over images.
        classes (Sequence[str], optional): Class names the model is built
            for: categories named otherwise are ``unknown_class`` and a file
            sharing no name with them is ``no_known_class``. ``None`` skips
            the class checks.
        read_images (bool): Open every image file found (header, or all
            with ``check_images``) to find unreadable files and sizes that
            differ from the file. ``False`` only checks that files exist.

    Returns:
        dict: ``{'ok': bool, 'errors': {code: count}, 'warnings': {code:
        count}, 'examples': {code: [dict]}, 'stats': {...}}``; an example
        names the entry (``file_name``, ``image_id``, ``ann_id``, ``bbox``,
        ...), ``stats`` has ``images``, ``annotations``, ``categories``,
        ``images_without_boxes``, ``boxes_per_class`` (name -> count).

    Raises:
        FileNotFoundError: ``ann_file`` is a path that does not exist.
        ValueError: ``check_images`` without ``read_images``.
    """
    if check_images and not read_images:
        raise ValueError('check_images=True needs read_images=True')
    rep = _Report(max_examples)
    stats = dict(images=0, annotations=0, categories=0, images_without_boxes=0,
                 boxes_per_class={})
    source = 'the given dict' if isinstance(ann_file, dict) else str(ann_file)
    data, error = _load(ann_file)
    if data is None:
        rep.add('invalid_json', file=source, error=error)
        return rep.finish(stats)
    lists = {}
    for key in ('images', 'annotations', 'categories'):
        lists[key] = data.get(key)
        if not isinstance(lists[key], list):
            rep.add('missing_key', where='file', key=key)
            lists[key] = []
    images, anns, cats = lists['images'], lists['annotations'], lists[
        'categories']
    if not images:
        rep.add('empty_file', file=source)
    cat_name = _check_categories(rep, cats, classes)
    with_id = _check_images(rep, images, img_dir, file_suffix, read_images,
                            check_images, progress)
    stats.update(images=len(images), annotations=len(anns),
                 categories=len(cats))
    stats.update(_check_annotations(rep, anns, with_id, cat_name, tolerance))
    return rep.finish(stats)


def _example_text(example: Dict) -> str:
    """``key=value, ...`` of one example."""
    return ', '.join(f'{k}={v}' for k, v in example.items())


def format_problem(report: Dict, code: str) -> str:
    """One line on one problem of a :func:`check_coco` report.

    Args:
        report (dict): The report.
        code (str): Problem code (key of :data:`PROBLEMS`).

    Returns:
        str: ``code (title): count, e.g. <examples>. Fix: <fix>.``
    """
    _, title, fix = PROBLEMS[code]
    count = report['errors'].get(code, report['warnings'].get(code, 0))
    examples = '; '.join(
        _example_text(ex) for ex in report['examples'].get(code, []))
    return f'{code} ({title}): {count}, e.g. {examples}. Fix: {fix}.'


def format_report(report: Dict, ann_file: str = '') -> str:
    """Human-readable text of a :func:`check_coco` report.

    Args:
        report (dict): The report.
        ann_file (str): File name shown in the header.

    Returns:
        str: Multi-line report: statistics, then every problem with its
        count, examples and fix, then the result.
    """
    lines = [f'COCO check: {ann_file}']
    s = report['stats']
    lines.append(f"  images: {s['images']}  annotations: {s['annotations']}  "
                 f"categories: {s['categories']}  images without boxes: "
                 f"{s['images_without_boxes']}")
    if s['boxes_per_class']:
        lines.append('  boxes per class: ' + ', '.join(
            f'{k}: {v}' for k, v in s['boxes_per_class'].items()))
    for kind in ('errors', 'warnings'):
        for code, n in sorted(report[kind].items(), key=lambda kv: -kv[1]):
            _, title, fix = PROBLEMS[code]
            lines.append(f'  [{kind[:-1].upper()}] {title}: {n}')
            for ex in report['examples'].get(code, []):
                lines.append(f'      e.g. {_example_text(ex)}')
            lines.append(f'      fix: {fix}')
    lines.append('  result: ' + ('OK' if report['ok'] else
                                 f"{sum(report['errors'].values())} error(s)"))
    return '\n'.join(lines)
