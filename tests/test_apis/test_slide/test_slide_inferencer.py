"""SlideInferencer end to end on small pyramidal TIFFs written here.

A deterministic "detector" (dark squares -> boxes, connected components)
makes exact expectations possible: cells placed exactly on tile borders and
corners are found once with their full box, blank tiles are skipped, an
interrupted slide resumes from its finished tiles with the same result, a
corrupt slide is reported while the others go on.
"""
import json

import cv2
import numpy as np
import pytest
import torch
from mmdet.models.detectors.base import BaseDetector
from mmengine.config import Config
from mmengine.structures import InstanceData

from cervdet.apis.slide import SlideInferencer, list_slides
from cervdet.testing.pyramidal_tiff import write_pyramidal_tiff_from_array

CLASSES = ('dark', 'grey')
TILE, OVERLAP = 128, 48


class DarkSquareDetector(BaseDetector):
    """Boxes of dark connected components (exact, for tests).

    Pixels darker than 100 are class ``dark`` (score 0.9); pixels in
    [100, 180) are class ``grey`` (score 0.6).
    """

    def __init__(self):
        super().__init__(data_preprocessor=dict(type='DetDataPreprocessor'))
        self.dataset_meta = dict(classes=CLASSES)
        self.calls = 0
        self.fail_after = None

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError('simulated crash')
        for img, sample in zip(batch_inputs, batch_data_samples):
            grey = img.float().mean(0).cpu().numpy()
            boxes, labels, scores = [], [], []
            for label, (lo, hi, s) in enumerate([(0, 100, .9),
                                                 (100, 180, .6)]):
                m = ((grey >= lo) & (grey < hi)).astype(np.uint8)
                n, _, stats, _ = cv2.connectedComponentsWithStats(m)
                st = stats[1:]
                st = st[st[:, 4] >= 4]
                boxes.append(np.stack([st[:, 0], st[:, 1], st[:, 0] +
                                       st[:, 2], st[:, 1] + st[:, 3]], 1))
                labels.append(np.full(len(st), label))
                scores.append(np.full(len(st), s))
            inst = InstanceData()
            inst.bboxes = torch.from_numpy(
                np.concatenate(boxes).astype(np.float32)).reshape(-1, 4)
            inst.labels = torch.from_numpy(np.concatenate(labels)).long()
            inst.scores = torch.from_numpy(
                np.concatenate(scores).astype(np.float32))
            sample.pred_instances = inst
        return batch_data_samples

    def _forward(self, *args, **kwargs):
        raise NotImplementedError

    def loss(self, *args, **kwargs):
        raise NotImplementedError

    def extract_feat(self, *args, **kwargs):
        raise NotImplementedError


CFG = Config(dict(test_dataloader=dict(dataset=dict(
    metainfo=dict(classes=CLASSES),
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='PackDetInputs',
                   meta_keys=('img_id', 'img_path', 'ori_shape',
                              'img_shape', 'scale_factor'))]))))


def make_slide(h=700, w=900):
    """White glass with dark squares on tile borders / corners, one grey
    square, and a blank right part. Returns (RGB image, GT boxes [N, 4],
    GT labels)."""
    img = np.full((h, w, 3), 245, np.uint8)
    stride = TILE - OVERLAP  # 80: tile origins 0, 80, 160, ...
    cells = [
        # (x1, y1, side, label): straddling the vertical border x = 128 of
        # tile 0 (and the origin x = 80 of tile 1), a corner at (160, 160),
        # a cell exactly on an origin line, a cell inside one tile
        (118, 30, 20, 0), (150, 150, 20, 0), (80, 240, 24, 0),
        (30, 330, 16, 0), (236, 100, 30, 0), (200, 400, 22, 1),
    ]
    boxes, labels = [], []
    for x, y, s, lb in cells:
        img[y:y + s, x:x + s] = 40 if lb == 0 else 140
        boxes.append([x, y, x + s, y + s])
        labels.append(lb)
    assert max(c[2] for c in cells) < OVERLAP and stride == 80
    return img, np.asarray(boxes, np.float32), np.asarray(labels)


def infer(**kw):
    args = dict(model=DarkSquareDetector(), tile_size=TILE, overlap=OVERLAP,
                batch_size=3, num_workers=0, cell_feature_size=0,
                score_thr=0.1, mpp=0.5, min_tissue=0.001, top_k=4,
                gallery_top_n=4, overview_max_side=256, chunk_tiles=2)
    args.update(kw)
    return SlideInferencer(CFG, **args)


def matched(dets_boxes, gt):
    """For each GT box, how many detections have IoU > 0.9 with it."""
    from mmdet.structures.bbox import bbox_overlaps
    iou = bbox_overlaps(torch.from_numpy(gt), torch.from_numpy(dets_boxes))
    return (iou > 0.9).sum(1).numpy()


@pytest.fixture
def slide(tmp_path):
    img, gt, labels = make_slide()
    path = tmp_path / 'slides' / 'slide_a.tiff'
    path.parent.mkdir()
    write_pyramidal_tiff_from_array(path, img, mpp=0.5, downsamples=(1, 4),
                                    tile=64, compression='zlib')
    return path, img, gt, labels


@pytest.mark.parametrize('merge', ['nms', 'ios', 'centre'])
def test_border_cells_found_once(slide, tmp_path, merge):
    path, _, gt, labels = slide
    rep = infer(merge=merge).run(path, tmp_path / f'out_{merge}')
    assert rep['status'] == 'done', rep
    sdir = tmp_path / f'out_{merge}' / 'slide_a'
    import csv
    with open(sdir / 'detections.csv') as f:
        rows = list(csv.DictReader(f))
    boxes = np.asarray([[float(r[k]) for k in ('x1', 'y1', 'x2', 'y2')]
                        for r in rows], np.float32)
    # every cell once, with its full box, and nothing else
    assert len(rows) == len(gt)
    np.testing.assert_array_equal(matched(boxes, gt), 1)
    cls = {(round(float(r['x1'])), round(float(r['y1']))): r['class']
           for r in rows}
    for b, lb in zip(gt, labels):
        assert cls[(int(b[0]), int(b[1]))] == CLASSES[lb]
    assert rep['detections']['per_class'] == {'dark': 5, 'grey': 1}
    # without edge dropping and merging, border cells come out several times
    assert rep['detections']['raw'] >= len(gt)


def test_outputs_and_blank_tiles(slide, tmp_path):
    path, _, gt, _ = slide
    rep = infer().run(path, tmp_path / 'out')
    sdir = tmp_path / 'out' / 'slide_a'
    for name in ('detections.csv', 'detections.parquet',
                 'detections.geojson', 'gallery.png', 'overview.png',
                 'cells_topk.npz', 'report.json'):
        assert (sdir / name).is_file(), name
    assert not (sdir / 'partial').exists()  # resume chunks removed at the end
    t = rep['tiles']
    # the right part and bottom are blank glass: skipped, never read
    assert t['skipped_blank'] > 0 and t['read'] == t['total'] - \
        t['skipped_blank']
    assert rep['reader'] and rep['mpp'] == pytest.approx(0.5)
    top = np.load(sdir / 'cells_topk.npz')
    assert len(top['scores']) == 4 and np.all(np.diff(top['scores']) <= 0)
    assert rep['slide_scores']['max'] == pytest.approx(0.9)
    # top_k=4 cells reach the aggregators: four dark cells (0.9)
    assert rep['slide_scores']['topk_mean'] == pytest.approx(0.9)
    rep_k = infer(top_k=6).run(path, tmp_path / 'out6')
    assert rep_k['slide_scores']['topk_mean'] == pytest.approx(
        (5 * .9 + .6) / 6)
    geo = json.loads((sdir / 'detections.geojson').read_text())
    assert len(geo['features']) == len(gt)
    assert all(f['properties']['objectType'] == 'detection'
               for f in geo['features'])


def test_resume_after_interruption(slide, tmp_path):
    path, _, gt, _ = slide
    full = infer().run(path, tmp_path / 'full')
    inf = infer()
    inf.model.fail_after = 2  # crashes in the 3rd batch (after 2 chunks)
    rep = inf.run(path, tmp_path / 'resumed')
    assert rep['status'] == 'failed' and 'simulated crash' in rep['error']
    partial = tmp_path / 'resumed' / 'slide_a' / 'partial'
    chunks = sorted(partial.glob('chunk_*.npz'))
    assert chunks, 'finished tiles were not saved'
    done = sum(len(np.load(c)['done']) for c in chunks)
    assert 0 < done < full['tiles']['read']
    rep2 = infer().run(path, tmp_path / 'resumed')
    assert rep2['status'] == 'done'
    assert rep2['tiles']['resumed'] == done
    assert rep2['tiles']['read'] == full['tiles']['read'] - done
    a = (tmp_path / 'full' / 'slide_a' / 'detections.csv').read_text()
    b = (tmp_path / 'resumed' / 'slide_a' / 'detections.csv').read_text()
    assert a == b
    # finished: a third run skips it, --overwrite redoes it
    assert infer().run(path, tmp_path / 'resumed')['status'] == 'skipped'
    rep3 = infer().run(path, tmp_path / 'resumed', overwrite=True)
    assert rep3['status'] == 'done' and rep3['tiles']['resumed'] == 0


def test_resume_with_other_settings_refused(slide, tmp_path):
    path, _, _, _ = slide
    inf = infer()
    inf.model.fail_after = 1
    assert inf.run(path, tmp_path / 'o')['status'] == 'failed'
    rep = infer(tile_size=TILE + 16).run(path, tmp_path / 'o')
    assert rep['status'] == 'failed'
    assert 'other settings' in rep['error'] and '--overwrite' in rep['error']


def test_folder_with_corrupt_slide(slide, tmp_path):
    path, _, gt, _ = slide
    bad = path.parent / 'broken.svs'
    bad.write_bytes(b'not a slide at all' * 10)
    slides = list_slides(path.parent)
    assert [p.name for p in slides] == ['broken.svs', 'slide_a.tiff']
    inf = infer()
    reps = [inf.run(p, tmp_path / 'out') for p in slides]
    assert reps[0]['status'] == 'failed' and 'broken.svs' in reps[0]['error']
    assert reps[1]['status'] == 'done'


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='overlap'):
        infer(overlap=TILE)
    with pytest.raises(ValueError, match='merge'):
        infer(merge='union')
    with pytest.raises(ValueError, match='abnormal_classes'):
        infer(abnormal_classes=['HSIL'])
    with pytest.raises(FileNotFoundError):
        list_slides(tmp_path / 'nothing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='holds no slide'):
        list_slides(tmp_path / 'empty')


def test_blank_slide_is_a_negative(tmp_path):
    """An all-glass slide: every tile skipped, no cell, slide scores 0, all
    outputs written (negatives are normal in screening)."""
    img = np.full((400, 500, 3), 245, np.uint8)
    path = tmp_path / 'blank.tiff'
    write_pyramidal_tiff_from_array(path, img, mpp=0.5, downsamples=(1, 4),
                                    tile=64, compression='zlib')
    rep = infer().run(path, tmp_path / 'out')
    assert rep['status'] == 'done'
    assert rep['tiles']['read'] == 0
    assert rep['tiles']['skipped_blank'] == rep['tiles']['total'] > 0
    assert rep['detections']['merged'] == 0
    assert rep['slide_scores'] == {'max': 0.0, 'topk_mean': 0.0}
    sdir = tmp_path / 'out' / 'blank'
    bag = np.load(sdir / 'cells_topk.npz')
    assert bag['scores'].shape == (0, ) and bag['bboxes'].shape == (0, 4)
    assert (sdir / 'gallery.png').is_file()
    assert json.loads((sdir / 'detections.geojson').read_text())[
        'features'] == []
