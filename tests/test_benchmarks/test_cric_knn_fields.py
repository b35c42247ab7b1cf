"""benchmarks/cric_knn_fields.py: the k-NN of frozen features on the CRIC
crops split per field (bank = train fields, queries = test fields, k chosen
on the val fields), its table and resume."""
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import cric_knn_fields as knn
from conftest import ensure_cric_coco

ROOT = Path(__file__).resolve().parents[2]


def test_crops_follow_their_field_split(tmp_path):
    for cls, stems in (('NILM', ['fa', 'fb']), ('HSIL', ['fa', 'fc', 'fz'])):
        (tmp_path / cls).mkdir()
        for i, stem in enumerate(stems):
            (tmp_path / cls / f'{stem}_{i}.png').write_bytes(b'')
    split = {'fa': 'train', 'fb': 'test', 'fc': 'val'}
    res = knn.crops_per_split(tmp_path, split)
    assert res.pop('unmatched') == 1  # fz is in no split
    assert [f.name for f in res['train'][0]] == ['fa_0.png', 'fa_0.png']
    assert res['train'][1].tolist() == [0, knn.CLASSES.index('HSIL')]
    assert [f.name for f in res['test'][0]] == ['fb_1.png']
    assert [f.name for f in res['val'][0]] == ['fc_1.png']


def test_no_field_in_two_splits(shared_data):
    ensure_cric_coco(shared_data)
    splits = knn.field_split(str(ROOT / 'data/cric-cervix/splits.csv'))
    assert set(splits.values()) == {'train', 'val', 'test'}


def test_smoke_end_to_end_and_resume(shared_data, tmp_path, monkeypatch):
    ensure_cric_coco(shared_data)
    from mmpretrain.models import ResNet

    # a random encoder in place of the DINO run (its command is the
    # suite's; training it here would take minutes)
    def fake_pretrain(py, seed, out, smoke):
        Path(out).mkdir(parents=True, exist_ok=True)
        path = str(Path(out) / 'backbone_teacher.pth')
        torch.manual_seed(100 + seed)
        torch.save(dict(state_dict=ResNet(
            18, stem_channels=32, base_channels=32).state_dict()), path)
        return path, dict(seed=seed, wall_s=60., cpu_s=30.)

    monkeypatch.setattr(knn, 'pretrain_dino', fake_pretrain)
    args = ['--smoke', '--work-dir', str(tmp_path), '--crops',
            str(shared_data / 'cric_crops_bethesda'), '--herlev',
            str(shared_data / 'herlev')]
    knn.main(args)
    suite = tmp_path / 'smoke' / 'knn-fields'
    text = (suite / 'table.md').read_text()
    assert text.startswith('SMOKE RUN')
    head = next(ln for ln in text.splitlines() if ln.startswith('| row'))
    assert [c.strip() for c in head.split('|')[1:-1]] == [
        'row', 'seeds', 'CRIC test fields weighted F1',
        'CRIC test fields accuracy', 'CRIC test fields binary weighted F1',
        'k (chosen on val fields)', 'Herlev weighted F1',
        'DINO pre-training min (wall / CPU)']
    results = json.loads((suite / 'results.json').read_text())
    assert set(results) == set(knn.ROWS)
    for row in knn.ROWS:
        (res, ) = results[row]
        assert 0 <= res['cric_test_weighted_f1'] <= 100
        assert res['k'] in (1, 3, 5)
        # the test numbers of every k are kept, the chosen one from val
        assert set(res['test_weighted_f1']) == {'1', '3', '5'}
        assert np.isclose(res['test_weighted_f1'][str(res['k'])],
                          res['cric_test_weighted_f1'])
        assert res['herlev_weighted_f1'] is not None
    assert results[knn.ROWS[0]][0]['pretrain']['cpu_s'] == 30.
    # resumable: finished rows are read back, not recomputed
    t0 = time.time()
    knn.main(args)
    assert time.time() - t0 < 10
