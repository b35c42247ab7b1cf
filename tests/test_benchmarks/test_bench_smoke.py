"""The comparison benchmarks run in smoke mode and print their tables."""
import numpy as np
import pytest


def test_box_statistics_by_hand():
    from benchmarks import bench_vs_sahi as b
    boxes = np.array([[0, 0, 10, 10],     # A
                      [1, 1, 11, 11],     # IoU(A) = 81/119 = 0.68 -> pair
                      [0, 0, 10, 4],      # half of A: IoS 1.0 -> pair
                      [50, 50, 60, 60]],  # alone
                     np.float32)
    iou, ios = b.pair_overlaps(boxes[:1], boxes)
    np.testing.assert_allclose(iou[0], [1, 81 / 119, 0.4, 0], rtol=1e-6)
    np.testing.assert_allclose(ios[0], [1, 0.81, 1, 0], rtol=1e-6)
    # A-B (IoU), A-C (IoS); B-C: IoS 27/40 = 0.675 < 0.7, IoU < 0.5
    assert b.duplicate_pairs(boxes) == 2
    assert b.duplicate_pairs(boxes, ios_thr=0.6) == 3
    assert b.duplicate_pairs(boxes, labels=np.array([0, 1, 0, 0])) == 1
    assert b.match_count(boxes, boxes[[3, 0]]) == 2
    assert b.match_count(boxes[:2], boxes[[1]]) == 1  # one to one
    assert b.match_count(boxes, np.zeros((0, 4))) == 0


def test_straddling_pairs_by_hand():
    from benchmarks import bench_vs_sahi as b

    # tiles 100 px, stride 80: starts 0, 80 (x and y); image 180 x 180
    xs = ys = np.array([0, 80])
    boxes = np.array([[10, 10, 40, 40],     # 0: inside tile (0, 0)
                      [12, 12, 42, 42],     # 1: dup of 0, same tile
                      [70, 10, 98, 40],     # 2: in tile x=0 (ends 98<=100)
                      [72, 10, 110, 40],    # 3: in no tile (a cut box)
                      [85, 10, 120, 40]],   # 4: tile x=80 only
                     np.float32)
    pairs = np.array([[0, 1], [2, 3], [2, 4], [3, 4]])
    # (0,1) union 10..42 fits tile 0. (2,3) union 70..110: tile 0 ends 100,
    # tile 80 starts after 70 -> straddles. (2,4) 70..120 straddles.
    # (3,4) 72..120: tile 80 starts after 72 -> straddles.
    assert b.straddling_pairs(boxes, pairs, xs, ys, 100) == 3
    assert b.straddling_pairs(boxes, pairs[:1], xs, ys, 100) == 0
    assert b.straddling_pairs(boxes, np.zeros((0, 2)), xs, ys, 100) == 0
    # the same along y
    by = boxes[:, [1, 0, 3, 2]]
    assert b.straddling_pairs(by, pairs, xs, ys, 100) == 3
    # index pairs agree with the count
    ip = b.duplicate_index_pairs(boxes)
    assert len(ip) == b.duplicate_pairs(boxes)
    assert (ip[:, 0] < ip[:, 1]).all() and [0, 1] in ip.tolist()


def test_border_cells_sit_on_interior_tile_edges(tmp_path, shared_data):
    from benchmarks import bench_vs_sahi as b
    field = shared_data / 'tct_field' / 'field_4096x2816.jpg'
    boxes = b.border_cell_field(field, tmp_path / 'f.jpg', 512, 64)
    # 8 interior vertical edges (x = 512 + 448 k) x 6 rows of tiles
    assert boxes.shape == (48, 4)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    assert set(cx.tolist()) == {512. + 448 * k for k in range(8)}
    assert (tmp_path / 'f.jpg').is_file()


def test_bench_vs_sahi_smoke(tmp_path):
    pytest.importorskip('sahi', reason='the SAHI comparison needs the '
                        'benchmarks extra: pip install -r '
                        'requirements/tests.txt')
    from benchmarks import bench_vs_sahi as b
    rows = b.main(['--smoke', '--in-process', '--tools', 'sahi', 'cervdet',
                   '--work-dir', str(tmp_path),
                   '--json', str(tmp_path / 'rows.json')])
    assert [r['tool'] for r in rows] == ['sahi', 'cervdet']
    for r in rows:
        assert tuple(r) == b.TABLE_COLUMNS
        assert r['wall_s'] > 0 and r['cpu_s'] > 0 and r['peak_mb'] > 100
        assert r['tiles'] == 6  # 600x400 at 256 / 32 px: 3 x 2 tiles
        assert 0 <= r['dup_edge_cls'] <= r['dup_edge'] <= r['dup_pairs']
    assert rows[0]['speedup_cpu'] == 1.0
    assert (tmp_path / 'rows.json').is_file()


def test_bench_hw_limit_smoke():
    from benchmarks import bench_hw_limit as h
    rows = h.main(['--smoke', '--iters', '1', '--configs',
                   h.DEFAULT_CONFIGS[0]])
    (r, ) = rows
    assert tuple(k for k in h.TABLE_COLUMNS if k in r) == h.TABLE_COLUMNS
    # forward GFLOPs at 64x64 of the half-width R18 RetinaNet: small, > 0
    assert 0 < r['fwd_gflops_per_img'] < 1
    assert r['step_gflops'] == pytest.approx(3 * r['fwd_gflops_per_img'])
    assert 0 < r['achieved_over_conv'] < 2


def test_bench_plugin_overhead_smoke(tmp_path):
    from benchmarks import bench_plugin_overhead as p
    rows = p.main(['--smoke', '--work-dir', str(tmp_path)])
    assert [r['path'].split(' ')[:2] for r in rows] == [
        ['cervdet', 'train'], ['plain', 'train'], ['cervdet', 'inference'],
        ['plain', 'inference'], ['train', 'dataloader']]
    for r in rows:
        assert tuple(r) == p.TABLE_COLUMNS
        assert r['imgs_per_s'] > 0
    for r in rows[:4]:  # CPU s per iteration, from the hook both import
        assert 0 < r['cpu_iter_s'] < 60
    for ours, plain in ((rows[0], rows[1]), (rows[2], rows[3])):
        assert plain['ratio_vs_plain'] == 1.0 and plain['ratio_wall'] == 1.0
        assert ours['ratio_vs_plain'] == pytest.approx(
            ours['cpu_iter_s'] / plain['cpu_iter_s'])  # one round
        assert ours['ratio_wall'] > 0
    # the plain config really is plain mmdet (it imports the timing hook
    # only), the cervdet one imports cervdet and the same hook
    from mmengine.config import Config
    plain = Config.fromfile(str(tmp_path / 'plain_cfg.py'))
    assert plain.runner_type == 'Runner'
    assert plain.custom_imports.imports == ['bench_cpu_hook']
    assert plain.train_dataloader.dataset.type == 'CocoDataset'
    ours = Config.fromfile(str(tmp_path / 'cervdet_cfg.py'))
    assert ours.custom_imports.imports == ['cervdet', 'bench_cpu_hook']
    for cfg in (plain, ours):
        assert cfg.custom_hooks[-1] == dict(type='BenchCPUTimeHook')
