"""Tests of cervdet.apis.slide.writers (tables, GeoJSON, PNG), and the
GeoJSON and pictures of a real field."""
import csv
import json
import sys
import uuid

import cv2
import jsonschema
import numpy as np
import pytest

from cervdet.apis.slide.writers import (
    TABLE_COLUMNS,
    UM_COLUMNS,
    detections_to_geojson,
    read_detections_table,
    write_detections_table,
    write_geojson,
    write_png,
)
from cervdet.datasets.slide_readers import open_slide
from cervdet.visualization.slide_drawer import (
    draw_gallery,
    draw_overview,
    slide_palette,
)

CLASSES = ['NILM', 'ASC-US', 'LSIL', 'ASC-H', 'HSIL', 'SCC']

#: QuPath's (>= 0.4) detection objects in GeoJSON, as its importer reads
#: them (qupath.lib.io.PathObjectTypeAdapters): a FeatureCollection of
#: Features with a Polygon geometry, objectType 'detection', a classification
#: with name and RGB colour, measurements as a {name: number} map.
_RGB = {'type': 'array', 'minItems': 3, 'maxItems': 3,
        'items': {'type': 'integer', 'minimum': 0, 'maximum': 255}}
_POINT = {'type': 'array', 'minItems': 2, 'maxItems': 2,
          'items': {'type': 'number'}}
QUPATH_DETECTIONS_SCHEMA = {
    'type': 'object',
    'required': ['type', 'features'],
    'properties': {
        'type': {'const': 'FeatureCollection'},
        'features': {'type': 'array', 'items': {
            'type': 'object',
            'required': ['type', 'id', 'geometry', 'properties'],
            'properties': {
                'type': {'const': 'Feature'},
                'id': {'type': 'string', 'pattern':
                       '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                       '[0-9a-f]{12}$'},
                'geometry': {
                    'type': 'object', 'required': ['type', 'coordinates'],
                    'properties': {
                        'type': {'const': 'Polygon'},
                        'coordinates': {
                            'type': 'array', 'minItems': 1, 'maxItems': 1,
                            'items': {'type': 'array', 'minItems': 4,
                                      'items': _POINT}}}},
                'properties': {
                    'type': 'object',
                    'required': ['objectType', 'classification',
                                 'measurements'],
                    'properties': {
                        'objectType': {'const': 'detection'},
                        'isLocked': {'type': 'boolean'},
                        'classification': {
                            'type': 'object', 'required': ['name', 'color'],
                            'properties': {'name': {'type': 'string'},
                                           'color': _RGB}},
                        'measurements': {
                            'type': 'object', 'required': ['score'],
                            'additionalProperties': {'type': 'number'}}}}}}},
    }
}


def _dets(n=7, seed=0, extent=900):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(10, 60, (n, 2))
    return dict(bboxes=np.concatenate([xy, xy + wh], 1).astype(np.float32),
                scores=rng.random(n).astype(np.float32),
                labels=rng.integers(0, len(CLASSES), n).astype(np.int64))


def _empty():
    return dict(bboxes=np.zeros((0, 4), np.float32),
                scores=np.zeros(0, np.float32), labels=np.zeros(0, np.int64))


# ------------------------------------------------------------------ tables
@pytest.mark.parametrize('ext', ['.csv', '.parquet'])
def test_table_round_trip(tmp_path, ext):
    dets = _dets(50)
    path = write_detections_table(tmp_path / f'dets{ext}', dets, CLASSES,
                                  mpp=0.25)
    back, classes = read_detections_table(path)
    np.testing.assert_array_equal(back['bboxes'], dets['bboxes'])
    np.testing.assert_array_equal(back['scores'], dets['scores'])
    np.testing.assert_array_equal(back['labels'], dets['labels'])
    assert back['bboxes'].dtype == np.float32
    assert back['labels'].dtype == np.int64
    if ext == '.parquet':  # the class list is stored
        assert classes == CLASSES
    else:  # rebuilt from the table: present classes by name
        for lab in np.unique(dets['labels']):
            assert classes[lab] == CLASSES[lab]
        assert read_detections_table(path, CLASSES)[1] == CLASSES
    # refuses to overwrite, unless asked
    with pytest.raises(FileExistsError, match='overwrite'):
        write_detections_table(path, dets, CLASSES)
    write_detections_table(path, _dets(3, seed=1), CLASSES, overwrite=True)
    assert len(read_detections_table(path)[0]['scores']) == 3
    assert not list(tmp_path.glob('.*.tmp'))  # no temporary left


def test_csv_columns_and_values(tmp_path):
    dets = dict(bboxes=np.array([[10, 20, 30, 60]], np.float32),
                scores=np.array([0.75], np.float32),
                labels=np.array([4]))
    path = write_detections_table(tmp_path / 'd.csv', dets, CLASSES, mpp=0.5)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(TABLE_COLUMNS) + list(UM_COLUMNS)
    r = rows[0]
    assert (float(r['cx']), float(r['cy'])) == (20, 40)
    assert (float(r['width']), float(r['height'])) == (20, 40)
    assert r['class'] == 'HSIL' and r['label'] == '4'
    assert float(r['score']) == pytest.approx(0.75)
    assert float(r['width_um']) == 10 and float(r['height_um']) == 20
    assert float(r['area_um2']) == 200
    # without mpp no um columns
    path = write_detections_table(tmp_path / 'n.csv', dets, CLASSES)
    with open(path) as f:
        assert next(csv.reader(f)) == list(TABLE_COLUMNS)


@pytest.mark.parametrize('ext', ['.csv', '.parquet'])
def test_table_empty_and_errors(tmp_path, ext):
    path = write_detections_table(tmp_path / f'e{ext}', _empty(), CLASSES)
    back, _ = read_detections_table(path, CLASSES)
    assert back['bboxes'].shape == (0, 4) and back['scores'].shape == (0, )
    with pytest.raises(ValueError, match='labels'):
        write_detections_table(tmp_path / f'bad{ext}',
                               dict(_dets(2), labels=np.array([0, 9])),
                               CLASSES)
    with pytest.raises(ValueError, match='.csv or .parquet'):
        write_detections_table(tmp_path / 'x.xlsx', _dets(2), CLASSES)
    with pytest.raises(FileNotFoundError):
        read_detections_table(tmp_path / f'missing{ext}')


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pyarrow', None)
    monkeypatch.setitem(sys.modules, 'pyarrow.parquet', None)
    with pytest.raises(ImportError, match='pip install pyarrow'):
        write_detections_table(tmp_path / 'd.parquet', _dets(2), CLASSES)


# ----------------------------------------------------------------- GeoJSON
def test_geojson_qupath_schema(tmp_path):
    dets = _dets(20)
    gj = detections_to_geojson(dets, CLASSES, mpp=0.25, slide_name='s1')
    jsonschema.validate(gj, QUPATH_DETECTIONS_SCHEMA)
    assert len(gj['features']) == 20
    pal = slide_palette(CLASSES)
    for i, f in enumerate(gj['features']):
        ring = np.asarray(f['geometry']['coordinates'][0])
        assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
        x1, y1, x2, y2 = dets['bboxes'][i]
        np.testing.assert_allclose(ring.min(0), [x1, y1], atol=1e-3)
        np.testing.assert_allclose(ring.max(0), [x2, y2], atol=1e-3)
        props = f['properties']
        lab = dets['labels'][i]
        assert props['classification']['name'] == CLASSES[lab]
        assert props['classification']['color'] == pal[lab].tolist()
        m = props['measurements']
        assert m['score'] == pytest.approx(float(dets['scores'][i]), abs=1e-6)
        assert m['width_um'] == pytest.approx((x2 - x1) * 0.25, abs=1e-3)
        assert m['area_um2'] == pytest.approx(
            (x2 - x1) * (y2 - y1) * 0.0625, rel=1e-4)
        uuid.UUID(f['id'])
    ids = [f['id'] for f in gj['features']]
    assert len(set(ids)) == len(ids)
    # stable ids across runs
    assert ids == [f['id'] for f in
                   detections_to_geojson(dets, CLASSES, mpp=0.25,
                                         slide_name='s1')['features']]
    path = write_geojson(tmp_path / 's1.geojson', dets, CLASSES, mpp=0.25,
                         slide_name='s1')
    with open(path) as f:
        jsonschema.validate(json.load(f), QUPATH_DETECTIONS_SCHEMA)
    with pytest.raises(FileExistsError):
        write_geojson(path, dets, CLASSES)
    # the QuPath 0.3 list format of measurements
    old = detections_to_geojson(dets, CLASSES, measurements_format='list')
    m = old['features'][0]['properties']['measurements']
    assert m == [{'name': 'score', 'value': pytest.approx(
        float(dets['scores'][0]), abs=1e-6)}]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(old, QUPATH_DETECTIONS_SCHEMA)
    empty = detections_to_geojson(_empty(), CLASSES)
    jsonschema.validate(empty, QUPATH_DETECTIONS_SCHEMA)
    assert empty['features'] == []


def test_write_png(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 255
    path = write_png(tmp_path / 'sub' / 'a.png', rgb)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)
    with pytest.raises(FileExistsError, match='overwrite'):
        write_png(path, rgb)
    write_png(path, rgb * 0, overwrite=True)
    assert cv2.imread(str(path)).max() == 0
    with pytest.raises(ValueError, match='RGB uint8'):
        write_png(tmp_path / 'b.png', rgb.astype(np.float32))


def test_real_field_gallery_and_overview(shared_data, tmp_path):
    path = shared_data / 'tct_field' / 'field_4096x2816.jpg'
    with open_slide(path, backend='image', mpp=0.25) as reader:
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, 4000, (500, 2))
        dets = dict(bboxes=np.concatenate([xy, xy + 60], 1).astype(
            np.float32), scores=rng.random(500).astype(np.float32),
                    labels=rng.integers(0, 6, 500))
        g = draw_gallery(reader, dets, CLASSES, top_n=10, crop_size=128)
        assert g.shape == (2 * (128 + 20), 5 * 128, 3)
        ov, ds = draw_overview(reader, dets, CLASSES, max_side=1024)
        assert ov.shape == (704, 1024, 3) and ds == pytest.approx(4.)
        write_png(tmp_path / 'gallery.png', g)
        write_png(tmp_path / 'overview.png', ov)
        gj = detections_to_geojson(dets, CLASSES, mpp=reader.mpp)
        jsonschema.validate(gj, QUPATH_DETECTIONS_SCHEMA)
