"""Per-slide files of whole-slide screening: detection tables, QuPath GeoJSON,
PNG pictures.

* :func:`write_detections_table` / :func:`read_detections_table`: CSV or
  Parquet, one row per cell (level-0 px, plus um when the slide's microns per
  pixel are known).
* :func:`detections_to_geojson` / :func:`write_geojson`: a GeoJSON
  ``FeatureCollection`` QuPath (>= 0.4) imports with *File > Import objects
  from file*: detection objects with class name, class colour and
  measurements (QuPath >= 0.4 reads and writes ``measurements`` as a
  ``{name: value}`` map; ``measurements_format='list'`` writes the
  ``[{name, value}]`` list QuPath 0.2/0.3 read).
* :func:`write_png`: an RGB picture (the gallery and overview of
  :mod:`cervdet.visualization.slide_drawer`).

Detections (``dets``) are a dict of numpy arrays: ``bboxes float32[N, 4]``
(x1, y1, x2, y2 in level-0 slide pixels), ``scores float32[N]``, ``labels
int64[N]`` (index into ``classes``). Every writer refuses to overwrite an
existing file unless ``overwrite=True`` and writes through a temporary file
renamed at the end, so an interrupted run never leaves a truncated output
that looks finished.
"""
import csv
import json
import os
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from cervdet.utils.slide_merge import check_dets
from cervdet.visualization.slide_drawer import Palette, slide_palette

Dets = Dict[str, np.ndarray]

#: Columns of the detections table (``width_um, height_um, area_um2`` are
#: appended when the microns per pixel are known).
TABLE_COLUMNS = ('x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'width', 'height',
                 'class', 'label', 'score')
UM_COLUMNS = ('width_um', 'height_um', 'area_um2')
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


__all__ = ['TABLE_COLUMNS', 'UM_COLUMNS', 'write_detections_table',
           'read_detections_table', 'detections_to_geojson', 'write_geojson',
           'write_png']
