"""Per-slide outputs of whole-slide screening.

* :func:`write_detections_table` / :func:`read_detections_table`: CSV or
  Parquet, one row per cell (level-0 px, plus um when the slide's microns per
  pixel are known).
* :func:`detections_to_geojson` / :func:`write_geojson`: a GeoJSON
  ``FeatureCollection`` QuPath (>= 0.4) imports with *File > Import objects
  from file*: detection objects with class name, class colour and
  measurements (QuPath >= 0.4 reads and writes ``measurements`` as a
  ``{name: value}`` map; ``measurements_format='list'`` writes the
  ``[{name, value}]`` list QuPath 0.2/0.3 read).
* :func:`draw_gallery`: the top-N cells by score, read from the slide.
* :func:`draw_overview`: a thumbnail with every detection, the top-N
  highlighted and numbered, and the tissue mask outline.
* :func:`write_png`.

Detections (``dets``) are a dict of numpy arrays: ``bboxes float32[N, 4]``
(x1, y1, x2, y2 in level-0 slide pixels), ``scores float32[N]``, ``labels
int64[N]`` (index into ``classes``). Every writer refuses to overwrite an
existing file unless ``overwrite=True`` and writes through a temporary file
renamed at the end, so an interrupted run never leaves a truncated output
that looks finished.
"""
import colorsys
import csv
import json
import os
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from cervdet.utils.slide_merge import check_dets

Dets = Dict[str, np.ndarray]
Palette = Union[Sequence[Sequence[int]], Dict[str, Sequence[int]], None]

#: Columns of the detections table (``width_um, height_um, area_um2`` are
#: appended when the microns per pixel are known).
TABLE_COLUMNS = ('x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'width', 'height',
                 'class', 'label', 'score')
UM_COLUMNS = ('width_um', 'height_um', 'area_um2')

#: Default RGB colours of class 0, 1, ... (distinct; more classes get
#: golden-ratio hues).
DEFAULT_SLIDE_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (46, 160, 67), (255, 193, 7), (255, 112, 0), (156, 39, 176),
    (229, 57, 53), (121, 17, 17), (30, 136, 229), (0, 172, 193),
    (109, 76, 65), (233, 30, 99), (96, 125, 139))
_NS = uuid.UUID('6f1c1b5e-3a0e-4c39-9a43-2a6f0f6f5c11')  # ids of features


def _check_overwrite(path: Union[str, Path], overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists: refusing to overwrite it (pass '
                              'overwrite=True / --force-overwrite, or choose '
                              'another output path)')
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _tmp(path: Path) -> Path:
    return path.with_name(f'.{path.name}.{os.getpid()}.tmp')


def slide_palette(classes: Sequence[str],
                  palette: Palette = None) -> np.ndarray:
    """RGB colour of every class.

    Args:
        classes (Sequence[str]): Class names.
        palette (list | dict, optional): RGB per class index, or a dict
            class name -> RGB. Default: :data:`DEFAULT_SLIDE_PALETTE`, then
            golden-ratio hues (deterministic).

    Returns:
        np.ndarray: uint8 ``[K, 3]`` RGB.
    """
    k = len(classes)
    if isinstance(palette, dict):
        missing = [c for c in classes if c not in palette]
        if missing:
            raise ValueError(f'palette has no colour for classes {missing}')
        cols = [palette[c] for c in classes]
    elif palette is not None:
        cols = list(palette)
        if len(cols) < k:
            raise ValueError(f'palette has {len(cols)} colours for {k} '
                             'classes: give one RGB per class')
        cols = cols[:k]
    else:
        cols = list(DEFAULT_SLIDE_PALETTE[:k])
        for i in range(len(cols), k):
            h = (0.13 + 0.618034 * i) % 1.
            cols.append(tuple(round(255 * v)
                              for v in colorsys.hsv_to_rgb(h, .8, .9)))
    arr = np.asarray(cols, dtype=np.int64).reshape(k, 3)
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError('palette colours must be RGB ints in [0, 255]')
    return arr.astype(np.uint8)


def _columns(dets: Dets, classes: Sequence[str],
             mpp: Optional[float]) -> Dict[str, np.ndarray]:
    _, _, labels = check_dets(dets, len(classes))
    b = np.asarray(dets['bboxes'], np.float32).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    cols = {
        'x1': b[:, 0], 'y1': b[:, 1], 'x2': b[:, 2], 'y2': b[:, 3],
        'cx': (b[:, 0] + b[:, 2]) / 2, 'cy': (b[:, 1] + b[:, 3]) / 2,
        'width': wh[:, 0], 'height': wh[:, 1],
        'class': np.asarray(list(classes) or [''], dtype=object)[labels]
        if labels.size else np.zeros(0, dtype=object),
        'label': labels,
        'score': np.asarray(dets['scores'], np.float32).reshape(-1),
    }
    if mpp is not None:
        cols['width_um'] = (wh[:, 0] * mpp).astype(np.float32)
        cols['height_um'] = (wh[:, 1] * mpp).astype(np.float32)
        cols['area_um2'] = (wh[:, 0] * wh[:, 1] * mpp * mpp).astype(
            np.float32)
    return cols


def write_detections_table(path: Union[str, Path],
                           dets: Dets,
                           classes: Sequence[str],
                           mpp: Optional[float] = None,
                           overwrite: bool = False) -> Path:
    """Write the detections of a slide as ``.csv`` or ``.parquet``.

    Columns: ``x1, y1, x2, y2, cx, cy, width, height`` (level-0 px),
    ``class`` (name), ``label`` (index), ``score``, and ``width_um,
    height_um, area_um2`` when ``mpp`` is given. Parquet files also store the
    class list (schema metadata ``cervdet.classes``) and ``mpp``.

    Args:
        path (str | Path): ``*.csv`` or ``*.parquet``.
        dets (dict): Detections (module docstring).
        classes (Sequence[str]): Class names.
        mpp (float, optional): Level-0 microns per pixel.
        overwrite (bool): Replace an existing file.

    Returns:
        Path: The written file.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ('.csv', '.parquet'):
        raise ValueError(f'{path}: detections tables are .csv or .parquet')
    cols = _columns(dets, classes, mpp)
    path = _check_overwrite(path, overwrite)
    tmp = _tmp(path)
    if ext == '.parquet':
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError('writing .parquet tables needs pyarrow: pip '
                              'install pyarrow (or write .csv)') from e
        arrays = [pa.array(cols[k].astype(str) if k == 'class' else cols[k])
                  for k in cols]
        meta = {'cervdet.classes': json.dumps(list(classes)),
                'cervdet.mpp': json.dumps(mpp)}
        table = pa.Table.from_arrays(arrays, names=list(cols))
        table = table.replace_schema_metadata(meta)
        pq.write_table(table, tmp)
    else:
        fmt = {k: (np.char.mod('%.9g', v.astype(np.float64))
                   if v.dtype.kind == 'f' else v.astype(str))
               for k, v in cols.items()}
        with open(tmp, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(list(cols))
            writer.writerows(zip(*fmt.values()))
    os.replace(tmp, path)
    return path


def read_detections_table(path: Union[str, Path],
                          classes: Optional[Sequence[str]] = None
                          ) -> Tuple[Dets, List[str]]:
    """Read a table of :func:`write_detections_table`.

    Args:
        path (str | Path): ``*.csv`` or ``*.parquet``.
        classes (Sequence[str], optional): The class list. Default: the one
            stored in a Parquet file, else rebuilt from the ``label`` and
            ``class`` columns (labels absent from the table are named
            ``class_<i>``).

    Returns:
        tuple: ``(dets, classes)``; ``dets`` has ``bboxes float32[N, 4]``,
        ``scores float32[N]``, ``labels int64[N]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'detections table {path} not found')
    stored = None
    if path.suffix.lower() == '.parquet':
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError('reading .parquet tables needs pyarrow: pip '
                              'install pyarrow') from e
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if b'cervdet.classes' in meta:
            stored = json.loads(meta[b'cervdet.classes'])
        data = {k: table.column(k).to_numpy(zero_copy_only=False)
                for k in table.column_names}
    else:
        with open(path, newline='') as f:
            rows = list(csv.reader(f))
        if not rows:
            raise ValueError(f'{path} is empty: expected a header row '
                             f'{",".join(TABLE_COLUMNS)}')
        header, body = rows[0], rows[1:]
        cols = list(zip(*body)) if body else [()] * len(header)
        data = {h: np.asarray(c, dtype=object) for h, c in zip(header, cols)}
    missing = [c for c in TABLE_COLUMNS if c not in data]
    if missing:
        raise ValueError(f'{path} misses the columns {missing} (expected '
                         f'{list(TABLE_COLUMNS)})')
    bboxes = np.stack([np.asarray(data[k], dtype=np.float32)
                       for k in ('x1', 'y1', 'x2', 'y2')], axis=1)
    labels = np.asarray(data['label'], dtype=np.int64)
    names = np.asarray(data['class']).astype(str)
    dets = dict(bboxes=bboxes.reshape(-1, 4),
                scores=np.asarray(data['score'], dtype=np.float32),
                labels=labels)
    if classes is None:
        classes = stored
    if classes is None:
        k = int(labels.max()) + 1 if labels.size else 0
        classes = [f'class_{i}' for i in range(k)]
        first = np.unique(labels, return_index=True)
        for lab, idx in zip(*first):
            classes[int(lab)] = str(names[idx])
    return dets, list(classes)


def detections_to_geojson(dets: Dets,
                          classes: Sequence[str],
                          palette: Palette = None,
                          mpp: Optional[float] = None,
                          slide_name: Optional[str] = None,
                          measurements_format: str = 'map') -> dict:
    """QuPath detection objects of a slide as a GeoJSON FeatureCollection.

    Every feature::

        {"type": "Feature", "id": "<uuid>",
         "geometry": {"type": "Polygon", "coordinates":
                      [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]},
         "properties": {"objectType": "detection",
                        "classification": {"name": cls, "color": [r, g, b]},
                        "isLocked": false,
                        "measurements": {"score": s, "width_um": ...}}}

    Coordinates are level-0 px (QuPath's full-resolution pixel space). Ids
    are UUIDs derived from the slide name and the box (stable across runs).

    Args:
        dets (dict): Detections (module docstring).
        classes (Sequence[str]): Class names.
        palette (list | dict, optional): See :func:`slide_palette`.
        mpp (float, optional): Microns per pixel: adds ``width_um,
            height_um, area_um2`` measurements.
        slide_name (str, optional): Stored in the collection's properties
            and in the feature ids.
        measurements_format (str): ``'map'`` (QuPath >= 0.4) or ``'list'``
            (``[{"name": ..., "value": ...}]``, QuPath 0.2/0.3).

    Returns:
        dict: The FeatureCollection (``json.dump`` it).
    """
    if measurements_format not in ('map', 'list'):
        raise ValueError("measurements_format must be 'map' (QuPath >= 0.4) "
                         "or 'list' (QuPath 0.3); got "
                         f'{measurements_format!r}')
    _, _, labels = check_dets(dets, len(classes))
    b = np.round(np.asarray(dets['bboxes'], np.float64).reshape(-1, 4), 3)
    scores = np.round(np.asarray(dets['scores'], np.float64).reshape(-1), 6)
    colours = slide_palette(classes, palette).astype(int).tolist()
    cls = [{'name': str(c), 'color': colours[i]}
           for i, c in enumerate(classes)]
    meas = {'score': scores}
    if mpp is not None:
        wh = (b[:, 2:] - b[:, :2]) * mpp
        meas.update(width_um=np.round(wh[:, 0], 4),
                    height_um=np.round(wh[:, 1], 4),
                    area_um2=np.round(wh[:, 0] * wh[:, 1], 4))
    names = list(meas)
    values = np.stack([meas[k] for k in names], 1).tolist() if len(b) else []
    rings = b[:, [0, 1, 2, 1, 2, 3, 0, 3, 0, 1]].reshape(-1, 5, 2).tolist()
    prefix = slide_name or ''
    keys = np.char.mod('%.3f', b).tolist() if len(b) else []

    def measurements(vals):
        if measurements_format == 'map':
            return dict(zip(names, vals))
        return [{'name': k, 'value': v} for k, v in zip(names, vals)]

    features = [{
        'type': 'Feature',
        'id': str(uuid.uuid5(_NS, f'{prefix}:{i}:{",".join(keys[i])}')),
        'geometry': {'type': 'Polygon', 'coordinates': [rings[i]]},
        'properties': {
            'objectType': 'detection',
            'classification': cls[lab],
            'isLocked': False,
            'measurements': measurements(values[i]),
        }
    } for i, lab in enumerate(labels.tolist())]
    out = {'type': 'FeatureCollection', 'features': features}
    props = {'classes': list(map(str, classes))}
    if slide_name is not None:
        props['slide'] = str(slide_name)
    if mpp is not None:
        props['mpp'] = float(mpp)
    out['properties'] = props  # foreign member (RFC 7946 6.1); QuPath ignores
    return out


def write_geojson(path: Union[str, Path],
                  dets: Dets,
                  classes: Sequence[str],
                  palette: Palette = None,
                  mpp: Optional[float] = None,
                  slide_name: Optional[str] = None,
                  measurements_format: str = 'map',
                  overwrite: bool = False) -> Path:
    """Write :func:`detections_to_geojson` to ``path`` (``*.geojson``)."""
    collection = detections_to_geojson(dets, classes, palette, mpp,
                                       slide_name, measurements_format)
    path = _check_overwrite(path, overwrite)
    tmp = _tmp(path)
    with open(tmp, 'w') as f:
        json.dump(collection, f, separators=(',', ':'))
    os.replace(tmp, path)
    return path


def _put_text(img: np.ndarray, text: str, org: Tuple[int, int],
              scale: float, colour=(255, 255, 255), thickness: int = 1,
              outline: bool = False) -> None:
    if outline:
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thickness, cv2.LINE_AA)


def _top(scores: np.ndarray, top_n: int) -> np.ndarray:
    order = np.lexsort((np.arange(scores.size), -scores))
    return order[:max(0, int(top_n))]


def draw_gallery(reader,
                 dets: Dets,
                 classes: Sequence[str],
                 top_n: int = 10,
                 crop_size: int = 128,
                 context: float = 1.5,
                 cols: int = 5,
                 palette: Palette = None,
                 min_crop: int = 32) -> np.ndarray:
    """A grid of the ``top_n`` cells by score, read from the slide.

    Each tile: the level-0 square around the box (side = ``context`` x the
    longer box side, at least ``min_crop`` px) resized to ``crop_size``, the
    box outlined and a frame in the class colour, and a caption bar below
    (``#rank class score``). Fewer cells give a smaller grid; no cell gives
    a picture saying so.

    Args:
        reader (SlideReader): See :mod:`cervdet.datasets.slide_readers`.
        dets (dict): Detections (level-0 px).
        classes (Sequence[str]): Class names.
        top_n (int): Number of cells.
        crop_size (int): Side of a tile image (px).
        context (float): Crop side / box side.
        cols (int): Tiles per row.
        palette (list | dict, optional): See :func:`slide_palette`.
        min_crop (int): Smallest crop side read (level-0 px).

    Returns:
        np.ndarray: uint8 ``[H, W, 3]`` RGB; tiles are ``crop_size`` wide
        and ``crop_size + caption`` high.
    """
    bboxes, scores, labels = check_dets(dets, len(classes))
    colours = slide_palette(classes, palette).astype(int).tolist()
    top = _top(scores, top_n)
    cap = max(14, int(round(crop_size * 0.16)))
    scale = max(0.3, crop_size / 128. * 0.38)
    tile_h = crop_size + cap
    if top.size == 0:
        w = max(crop_size * max(1, cols), 240)
        img = np.full((tile_h, w, 3), 255, np.uint8)
        _put_text(img, 'no detections', (8, tile_h // 2 + 5), scale * 1.3,
                  (0, 0, 0), 1)
        return img
    ncols = min(max(1, cols), top.size)
    nrows = int(np.ceil(top.size / ncols))
    canvas = np.full((nrows * tile_h, ncols * crop_size, 3), 255, np.uint8)
    for rank, i in enumerate(top.tolist()):  # loop over <= top_n cells
        x1, y1, x2, y2 = bboxes[i]
        side = max(min_crop, int(np.ceil(max(x2 - x1, y2 - y1) * context)))
        ox = int(np.floor((x1 + x2) / 2 - side / 2))
        oy = int(np.floor((y1 + y2) / 2 - side / 2))
        crop = np.ascontiguousarray(reader.read_region(ox, oy, side, side, 0))
        f = crop_size / float(side)
        crop = cv2.resize(crop, (crop_size, crop_size),
                          interpolation=cv2.INTER_AREA if f < 1
                          else cv2.INTER_LINEAR)
        colour = tuple(colours[labels[i]])
        p1 = (int(round((x1 - ox) * f)), int(round((y1 - oy) * f)))
        p2 = (int(round((x2 - ox) * f)), int(round((y2 - oy) * f)))
        cv2.rectangle(crop, p1, p2, colour, 1)
        t = max(2, crop_size // 40)
        cv2.rectangle(crop, (0, 0), (crop_size - 1, crop_size - 1), colour,
                      t)
        r, c = divmod(rank, ncols)
        y0, x0 = r * tile_h, c * crop_size
        canvas[y0:y0 + crop_size, x0:x0 + crop_size] = crop
        canvas[y0 + crop_size:y0 + tile_h, x0:x0 + crop_size] = colour
        dark = sum(colour) < 384  # white text on dark colours
        _put_text(canvas, f'#{rank + 1} {classes[labels[i]]} {scores[i]:.2f}',
                  (x0 + 3, y0 + crop_size + cap - max(3, cap // 4)), scale,
                  (255, 255, 255) if dark else (0, 0, 0), 1)
    return canvas


def _draw_markers(img: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                  half: np.ndarray, colours: np.ndarray) -> None:
    """Hollow squares of half-side ``half`` (px) at ``(cx, cy)``, drawn by
    array indexing (one pass per distinct marker size, not per box)."""
    h, w = img.shape[:2]
    for r in np.unique(half):
        sel = half == r
        off = np.arange(-r, r + 1)
        ring = np.concatenate([  # the perimeter offsets of the square
            np.stack([off, np.full_like(off, -r)], 1),
            np.stack([off, np.full_like(off, r)], 1),
            np.stack([np.full_like(off, -r), off], 1),
            np.stack([np.full_like(off, r), off], 1)])
        xs = (cx[sel, None] + ring[None, :, 0]).reshape(-1)
        ys = (cy[sel, None] + ring[None, :, 1]).reshape(-1)
        col = np.repeat(colours[sel], ring.shape[0], axis=0)
        ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok]] = col[ok]


def draw_overview(reader,
                  dets: Dets,
                  classes: Sequence[str],
                  max_side: int = 2048,
                  mask: Optional[np.ndarray] = None,
                  mask_downsample: Optional[float] = None,
                  top_n_highlight: int = 10,
                  palette: Palette = None,
                  mask_colour: Tuple[int, int, int] = (0, 90, 255)
                  ) -> Tuple[np.ndarray, float]:
    """A low-resolution overview of a slide with its detections.

    Every detection is a small hollow square in its class colour at its
    centre (side from the box size, 5 to 13 px), drawn by array indexing so
    10^5 boxes take milliseconds; higher scores are drawn last. The
    ``top_n_highlight`` best boxes get a thick box and their rank number;
    the tissue mask gets a ``mask_colour`` outline.

    Args:
        reader (SlideReader): Gives :meth:`thumbnail`.
        dets (dict): Detections (level-0 px).
        classes (Sequence[str]): Class names.
        max_side (int): Longest side of the overview.
        mask (np.ndarray, optional): bool ``[h, w]`` tissue mask.
        mask_downsample (float, optional): Level-0 px per mask px (default:
            slide width / mask width).
        top_n_highlight (int): Number of boxes highlighted and numbered.
        palette (list | dict, optional): See :func:`slide_palette`.
        mask_colour (tuple): RGB of the mask outline.

    Returns:
        tuple: ``(rgb uint8[h, w, 3], downsample)`` with ``downsample`` the
        level-0 px per overview px.
    """
    bboxes, scores, labels = check_dets(dets, len(classes))
    thumb, ds = reader.thumbnail(max_side)
    img = np.ascontiguousarray(thumb[..., :3]).astype(np.uint8).copy()
    h, w = img.shape[:2]
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f'mask must be a 2-D bool array; got shape '
                             f'{mask.shape}')
        if mask_downsample is None:  # the mask covers the whole slide
            m = cv2.resize(mask.astype(np.uint8), (w, h),
                           interpolation=cv2.INTER_NEAREST)
        else:  # place the mask by its own downsample
            f = float(mask_downsample) / ds
            mm = cv2.resize(mask.astype(np.uint8),
                            (max(1, int(round(mask.shape[1] * f))),
                             max(1, int(round(mask.shape[0] * f)))),
                            interpolation=cv2.INTER_NEAREST)
            m = np.zeros((h, w), np.uint8)
            m[:mm.shape[0], :mm.shape[1]] = mm[:h, :w]
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, tuple(int(v) for v in mask_colour),
                         max(1, max(h, w) // 1000))
    if bboxes.shape[0] == 0:
        return img, ds
    colours = slide_palette(classes, palette)[labels]
    order = np.argsort(scores, kind='stable')  # best drawn last (on top)
    b = bboxes[order] / ds
    cx = np.round((b[:, 0] + b[:, 2]) / 2).astype(np.int64)
    cy = np.round((b[:, 1] + b[:, 3]) / 2).astype(np.int64)
    half = np.clip(np.round(np.maximum(b[:, 2] - b[:, 0],
                                       b[:, 3] - b[:, 1]) / 2), 2,
                   6).astype(np.int64)
    _draw_markers(img, cx, cy, half, colours[order])
    pal = slide_palette(classes, palette).astype(int).tolist()
    thick = max(2, max(h, w) // 600)
    scale = max(0.4, max(h, w) / 2048. * 0.7)
    for rank, i in enumerate(_top(scores, top_n_highlight).tolist()):
        x1, y1, x2, y2 = bboxes[i] / ds
        half_i = max(6, int(round(max(x2 - x1, y2 - y1) / 2)) + 3)
        c = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
        p1, p2 = (c[0] - half_i, c[1] - half_i), (c[0] + half_i,
                                                  c[1] + half_i)
        cv2.rectangle(img, p1, p2, (0, 0, 0), thick + 2)
        cv2.rectangle(img, p1, p2, tuple(pal[labels[i]]), thick)
        _put_text(img, str(rank + 1), (p2[0] + 2, max(p1[1] + 10, 10)), scale,
                  tuple(pal[labels[i]]), max(1, thick // 2), outline=True)
    return img, ds


def write_png(path: Union[str, Path], rgb: np.ndarray,
              overwrite: bool = False) -> Path:
    """Write an RGB uint8 image as PNG (refuses to overwrite)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError('write_png needs an RGB uint8 [H, W, 3] image; got '
                         f'{rgb.dtype} {rgb.shape}')
    path = _check_overwrite(path, overwrite)
    tmp = _tmp(path).with_suffix('.png')
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')
    os.replace(tmp, path)
    return path


__all__ = ['TABLE_COLUMNS', 'UM_COLUMNS', 'DEFAULT_SLIDE_PALETTE',
           'slide_palette', 'write_detections_table', 'read_detections_table',
           'detections_to_geojson', 'write_geojson', 'draw_gallery',
           'draw_overview', 'write_png']
