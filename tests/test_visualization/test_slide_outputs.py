"""Tests of cervdet.visualization.slide_outputs (tables, GeoJSON, pictures)."""
import csv
import json
import sys
import time
import uuid

import cv2
import jsonschema
import numpy as np
import pytest

from cervdet.datasets.slide_readers import ImageReader, open_slide
from cervdet.visualization.slide_outputs import (
    DEFAULT_SLIDE_PALETTE,
    TABLE_COLUMNS,
    UM_COLUMNS,
    detections_to_geojson,
    draw_gallery,
    draw_overview,
    read_detections_table,
    slide_palette,
    write_detections_table,
    write_geojson,
    write_png,
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


def test_palette():
    pal = slide_palette(CLASSES)
    assert pal.shape == (6, 3) and pal.dtype == np.uint8
    assert len({tuple(c) for c in pal.tolist()}) == 6
    assert pal.tolist() == [list(c) for c in DEFAULT_SLIDE_PALETTE[:6]]
    many = slide_palette([f'c{i}' for i in range(30)])
    assert len({tuple(c) for c in many.tolist()}) == 30
    np.testing.assert_array_equal(many, slide_palette(
        [f'c{i}' for i in range(30)]))  # deterministic
    custom = slide_palette(['a', 'b'], {'a': (1, 2, 3), 'b': (4, 5, 6)})
    assert custom.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match='no colour'):
        slide_palette(['a', 'b'], {'a': (1, 2, 3)})


# ---------------------------------------------------------------- pictures
def _field(tmp_path):
    """A white 'slide' with uniformly coloured cells; returns reader, dets,
    fill colours."""
    img = np.full((600, 900, 3), 255, np.uint8)
    fills = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (120, 60, 0)]
    boxes = np.array([[100, 100, 140, 150], [400, 300, 460, 340],
                      [700, 80, 730, 120], [50, 500, 100, 560]], np.float32)
    for (x1, y1, x2, y2), c in zip(boxes.astype(int), fills):
        img[y1:y2, x1:x2] = c
    path = tmp_path / 'field.png'
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    dets = dict(bboxes=boxes, scores=np.array([0.5, 0.9, 0.7, 0.2],
                                              np.float32),
                labels=np.array([0, 4, 5, 1]))
    return ImageReader(path), dets, fills


def test_gallery(tmp_path):
    reader, dets, fills = _field(tmp_path)
    pal = slide_palette(CLASSES)
    g = draw_gallery(reader, dets, CLASSES, top_n=3, crop_size=96, cols=2)
    cap = max(14, int(round(96 * 0.16)))
    assert g.dtype == np.uint8 and g.shape == (2 * (96 + cap), 2 * 96, 3)
    # rank 1 = score 0.9 (box 1, HSIL); rank 2 = box 2 (SCC); rank 3 = box 0
    for rank, i in enumerate([1, 2, 0]):
        r, c = divmod(rank, 2)
        y0, x0 = r * (96 + cap), c * 96
        assert g[y0 + 48, x0 + 48].tolist() == list(fills[i])  # the cell
        assert g[y0, x0].tolist() == pal[dets['labels'][i]].tolist()  # frame
        assert g[y0 + 96 + 1, x0 + 1].tolist() == \
            pal[dets['labels'][i]].tolist()  # caption bar
    # the empty 4th slot stays white
    assert (g[96 + cap:, 96:] == 255).all()
    # the caption has text (not a uniform bar)
    bar = g[96:96 + cap, :96]
    assert len(np.unique(bar.reshape(-1, 3), axis=0)) > 2
    one = draw_gallery(reader, dets, CLASSES, top_n=10, crop_size=64, cols=5)
    assert one.shape[1] == 4 * 64  # 4 cells: one row of 4
    none = draw_gallery(reader, {k: v[:0] for k, v in dets.items()}, CLASSES)
    assert none.ndim == 3 and none.dtype == np.uint8
    assert (none < 128).any() and (none == 255).any()  # "no detections"


def test_overview_markers_and_highlight(tmp_path):
    reader, dets, fills = _field(tmp_path)
    pal = slide_palette(CLASSES)
    ov, ds = draw_overview(reader, dets, CLASSES, max_side=450,
                           top_n_highlight=1)
    assert ds == pytest.approx(2.) and ov.shape == (300, 450, 3)
    # box 3 (not highlighted): marker ring at its centre +- half-side
    x1, y1, x2, y2 = dets['bboxes'][3] / ds
    cx, cy = int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2))
    half = int(np.clip(round(max(x2 - x1, y2 - y1) / 2), 2, 6))
    for dx, dy in [(-half, 0), (half, 0), (0, -half), (0, half)]:
        assert ov[cy + dy, cx + dx].tolist() == pal[1].tolist()
    assert ov[cy, cx].tolist() != pal[1].tolist()  # hollow
    # the best box (1, HSIL) is highlighted with its class colour
    x1, y1, x2, y2 = dets['bboxes'][1] / ds
    region = ov[int(y1) - 15:int(y2) + 15, int(x1) - 15:int(x2) + 15]
    hit = (region == pal[4]).all(-1)
    assert hit.sum() > 40
    assert (region == 0).all(-1).sum() > 20  # black outline of the highlight
    # tissue mask outline
    mask = np.zeros((60, 90), bool)
    mask[10:50, 20:70] = True  # mask at 10 level-0 px per px
    ov2, _ = draw_overview(reader, dets, CLASSES, max_side=450, mask=mask,
                           mask_downsample=10.)
    blue = (ov2 == (0, 90, 255)).all(-1)
    ys, xs = np.nonzero(blue)
    assert blue.sum() > 100
    assert xs.min() == 100 and ys.min() == 50  # 20 * 10 / 2, 10 * 10 / 2
    assert xs.max() == 349 and ys.max() == 249
    empty, _ = draw_overview(reader, {k: v[:0] for k, v in dets.items()},
                             CLASSES, max_side=450)
    np.testing.assert_array_equal(empty, reader.thumbnail(450)[0])


def test_overview_1e5_boxes_fast(tmp_path):
    reader, _, _ = _field(tmp_path)
    rng = np.random.default_rng(0)
    n = 100000
    xy = rng.uniform(0, 880, (n, 2))
    dets = dict(bboxes=np.concatenate([xy, xy + 20], 1).astype(np.float32),
                scores=rng.random(n).astype(np.float32),
                labels=rng.integers(0, 6, n))
    t = time.time()
    ov, _ = draw_overview(reader, dets, CLASSES, max_side=900)
    assert time.time() - t < 5
    assert ov.shape == (600, 900, 3)


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


@pytest.mark.parametrize('backend', ['openslide', 'tiffslide'])
def test_gallery_overview_on_pyramidal_tiff(tmp_path, backend):
    """A tiny tiled pyramidal TIFF: crops at the slide corner read white
    outside the slide; the overview uses the coarse level."""
    import tifffile
    img = np.full((1024, 1536, 3), 230, np.uint8)
    img[:40, :40] = (200, 0, 0)
    path = tmp_path / 'slide.tif'
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), photometric='rgb',
                 resolution=(1e4 / 0.25, 1e4 / 0.25),
                 resolutionunit='CENTIMETER')
        tw.write(img[::4, ::4], tile=(256, 256), photometric='rgb',
                 subfiletype=1)
    dets = dict(bboxes=np.array([[0, 0, 40, 40]], np.float32),
                scores=np.array([0.9], np.float32), labels=np.array([2]))
    with open_slide(path, backend=backend) as reader:
        assert reader.level_count == 2
        g = draw_gallery(reader, dets, CLASSES, crop_size=64)
        assert g.shape == (64 + 14, 64, 3)
        assert g[32, 32].tolist() == [200, 0, 0]  # the cell
        assert g[5, 5].tolist() == [255, 255, 255]  # outside the slide
        ov, ds = draw_overview(reader, dets, CLASSES, max_side=512)
        assert ov.shape == (341, 512, 3) and ds == pytest.approx(3.)
        assert (ov == slide_palette(CLASSES)[2]).all(-1).any()
