"""SlideBagDataset: labels CSV + cells_topk.npz bags, packing, clear errors
(missing bag, unknown label, empty / headerless CSV, bad bag files)."""
import json

import numpy as np
import pytest

from cervdet.datasets import SlideBagDataset, load_slide_bag


def _bag(root, name, k, c=3, feats=True):
    d = root / 'bags' / name
    d.mkdir(parents=True)
    arrays = dict(bboxes=np.arange(4 * k, dtype=np.float32).reshape(k, 4),
                  scores=np.linspace(0.1, 0.9, k).astype(np.float32),
                  labels=np.ones(k, np.int64), classes=np.array(['NILM',
                                                                 'HSIL']))
    if feats:
        arrays['feats'] = np.ones((k, c), np.float32)
    np.savez(d / 'cells_topk.npz', **arrays)
    (d / 'report.json').write_text(json.dumps(dict(slide=name)))


def _csv(root, text, name='labels.csv'):
    p = root / name
    p.write_text(text)
    return p


def test_load_and_pack(tmp_path):
    _bag(tmp_path, 'a', 4)
    _bag(tmp_path, 'b', 0)  # a clean negative: no cell at all
    _bag(tmp_path, 'c', 2)
    _csv(tmp_path, 'slide,label\na,HSIL\nb,NILM\n\nc,LSIL\n')
    ds = SlideBagDataset(ann_file='labels.csv', data_root=str(tmp_path),
                         bag_root='bags',
                         metainfo=dict(classes=('NILM', 'LSIL', 'HSIL')))
    assert len(ds) == 3
    assert ds.get_gt_labels().tolist() == [2, 0, 1]
    assert ds.metainfo['negative_classes'] == ('NILM', )
    item = ds[0]
    assert item['inputs']['scores'].shape == (4, )
    assert item['inputs']['feats'].shape == (4, 3)
    assert item['inputs']['bboxes'].shape == (4, 4)
    s = item['data_samples']
    assert int(s.gt_label) == 2 and s.is_positive is True
    assert s.slide == 'a' and s.num_cells == 4
    empty = ds[1]
    assert empty['inputs']['scores'].shape == (0, )
    assert empty['data_samples'].is_positive is False
    assert ds.get_cat_ids(2) == [1]


def test_binary_default_and_negative_classes(tmp_path):
    _bag(tmp_path, 'a', 2, feats=False)
    _csv(tmp_path, 'slide,label\na,positive\n')
    ds = SlideBagDataset(ann_file=str(tmp_path / 'labels.csv'),
                         bag_root=str(tmp_path / 'bags'))
    assert ds.metainfo['classes'] == ('negative', 'positive')
    item = ds[0]
    assert item['inputs']['feats'].shape == (2, 0)  # no feats in the file
    assert item['data_samples'].is_positive is True
    _csv(tmp_path, 'slide,label\na,ASC-US\n', 'g.csv')
    ds = SlideBagDataset(ann_file=str(tmp_path / 'g.csv'),
                         bag_root=str(tmp_path / 'bags'),
                         metainfo=dict(classes=('NILM', 'ASC-US', 'HSIL')),
                         negative_classes=('NILM', 'ASC-US'))
    assert ds[0]['data_samples'].is_positive is False


def test_errors(tmp_path):
    _bag(tmp_path, 'a', 2)
    kw = dict(bag_root=str(tmp_path / 'bags'),
              metainfo=dict(classes=('NILM', 'HSIL')))
    p = _csv(tmp_path, 'slide,label\na,HSIL\nzz,NILM\n')
    with pytest.raises(FileNotFoundError,
                       match=r'no cell bag.*zz.*slide_infer'):
        SlideBagDataset(ann_file=str(p), **kw)
    p = _csv(tmp_path, 'slide,label\na,CANCER\n')
    with pytest.raises(ValueError, match=r"'CANCER', not one of"):
        SlideBagDataset(ann_file=str(p), **kw)
    p = _csv(tmp_path, 'slide,label\n')
    with pytest.raises(ValueError, match='lists no slide'):
        SlideBagDataset(ann_file=str(p), **kw)
    p = _csv(tmp_path, 'a,HSIL\n')
    with pytest.raises(ValueError, match='header "slide,label"'):
        SlideBagDataset(ann_file=str(p), **kw)
    p = _csv(tmp_path, 'slide,label\na,HSIL\na,NILM\n')
    with pytest.raises(ValueError, match='already listed on line 2'):
        SlideBagDataset(ann_file=str(p), **kw)
    with pytest.raises(FileNotFoundError, match='not found'):
        SlideBagDataset(ann_file=str(tmp_path / 'nope.csv'), **kw)
    with pytest.raises(ValueError, match='negative_classes'):
        SlideBagDataset(ann_file=str(tmp_path / 'labels.csv'),
                        negative_classes=('normal', ), **kw)


def test_bad_bag_files(tmp_path):
    p = tmp_path / 'x.npz'
    np.savez(p, scores=np.zeros(3, np.float32),
             feats=np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r'x.npz.*"feats" must be \[K, C\]'):
        load_slide_bag(str(p))
    np.savez(p, bboxes=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match='no "scores"'):
        load_slide_bag(str(p))
    p.write_text('garbage')
    with pytest.raises(ValueError, match='cannot read the cell bag'):
        load_slide_bag(str(p))
