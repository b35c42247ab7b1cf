"""build_pcn_patches.py on the real CRIC fields (COCO contract of cric_to_coco).

The COCO files are written here from CRIC's own ``classifications.csv`` in the
``abnormal5`` form of the contract (abnormal cells are boxes, NILM cells are
``images[].other_points``), so the test does not depend on the converter.
"""
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'tools' / 'dataset_converters'))
import build_pcn_patches as bp  # noqa: E402

ABNORMAL5 = ['ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC']
TBS = {'Negative for intraepithelial lesion': 'NILM'}
#: Fields (stems) with abnormal and NILM cells, read from the CSV.
TRAIN = ['ba9d94a8fdbaba01220db89cde170b24', '363b6b00d925e5c52694b8f7b678c53b']
TEST = ['ac20a24b37b7e87dcc375e6b7420d40e']
BOX = 46  # px at 688x510, about a nucleus-centred cell


def _contract(cric: Path, stems, out: Path) -> Path:
    """A COCO file of the CRIC contract (abnormal5) for ``stems``."""
    rows = defaultdict(list)
    with open(cric / 'classifications.csv') as f:
        for r in csv.DictReader(f):
            rows[Path(r['image_filename']).stem].append(r)
    images, anns = [], []
    for i, stem in enumerate(stems, 1):
        w, h = 688, 510
        pts = []
        for r in rows[stem]:
            x = float(r['nucleus_x']) * w / 1376
            y = float(r['nucleus_y']) * h / 1020
            cls = TBS.get(r['bethesda_system'], r['bethesda_system'])
            if cls == 'NILM':
                pts.append(dict(point=[x, y], bethesda_class=cls,
                                cric_cell_id=int(r['cell_id'])))
                continue
            x1, y1 = max(0., x - BOX / 2), max(0., y - BOX / 2)
            x2, y2 = min(w, x + BOX / 2), min(h, y + BOX / 2)
            anns.append(dict(
                id=len(anns) + 1, image_id=i,
                category_id=ABNORMAL5.index(cls) + 1,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                iscrowd=0, point=[x, y], cric_cell_id=int(r['cell_id']),
                bethesda_class=cls))
        images.append(dict(id=i, file_name=f'{stem}.jpg', width=w, height=h,
                           cric_image_id=int(rows[stem][0]['image_id']),
                           source_size=[1376, 1020], other_points=pts))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(ABNORMAL5)])))
    return out


@pytest.fixture(scope='module')
def cric_coco(shared_data, tmp_path_factory):
    cric = shared_data / 'cric_cervix'
    root = tmp_path_factory.mktemp('cric_coco')
    return dict(
        img_dir=cric / 'images',
        train=_contract(cric, TRAIN, root / 'annotations' / 'train.json'),
        test=_contract(cric, TEST, root / 'annotations' / 'test.json'))


def test_patches_from_real_fields_use_marked_nilm_cells(cric_coco, tmp_path):
    out = tmp_path / 'p'
    res = bp.build_pcn_patches(
        out, {'train': (cric_coco['train'], cric_coco['img_dir'])},
        patch_size=32, forbid_fields=[cric_coco['test']], progress=False)
    coco = json.loads(cric_coco['train'].read_text())
    n_abn = len(coco['annotations'])
    n_nilm = sum(len(im['other_points']) for im in coco['images'])
    assert n_abn > 0 and n_nilm > 0
    counts, sources = res['counts']['train'], res['sources']['train']
    # 2 patches per abnormal box (1 exact + 1 jittered), as many negatives
    assert counts['abnormal'] == 2 * n_abn == sources['abnormal_box']
    assert counts['normal'] == 2 * n_abn
    # 70 % of the negatives sit on cells: the marked NILM cells come first
    assert 0 < sources['normal_box'] <= n_nilm
    lines = (out / 'meta' / 'train.txt').read_text().split()
    assert len(lines) == 2 * (counts['abnormal'] + counts['normal'])
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['forbid_fields'] == [str(cric_coco['test'])]
    # without other_points the same fields give no marked-normal negatives
    bare = json.loads(cric_coco['train'].read_text())
    for im in bare['images']:
        im.pop('other_points')
    bare_file = tmp_path / 'bare.json'
    bare_file.write_text(json.dumps(bare))
    res2 = bp.build_pcn_patches(
        tmp_path / 'q', {'train': (bare_file, cric_coco['img_dir'])},
        patch_size=32, progress=False)
    assert 'normal_box' not in res2['sources']['train']


def test_a_test_field_in_the_patch_set_is_refused(cric_coco, tmp_path):
    leaky = json.loads(cric_coco['train'].read_text())
    test_im = json.loads(cric_coco['test'].read_text())['images'][0]
    leaky['images'].append(dict(test_im, id=99))
    leaky_file = tmp_path / 'leaky.json'
    leaky_file.write_text(json.dumps(leaky))
    with pytest.raises(ValueError, match=r'forbid-fields.*test fields'):
        bp.build_pcn_patches(
            tmp_path / 'r', {'train': (leaky_file, cric_coco['img_dir'])},
            patch_size=32, forbid_fields=[cric_coco['test']], progress=False)
    assert not (tmp_path / 'r' / 'meta' / 'train.txt').exists()


def test_cli_with_one_image_folder(cric_coco, tmp_path, capsys):
    root = cric_coco['train'].parents[1]
    rc = bp.main(['--coco-root', str(root), '--splits', 'train',
                  '--img-dir', str(cric_coco['img_dir']),
                  '--forbid-fields', str(cric_coco['test']),
                  '--out-dir', str(tmp_path / 'cli'), '--patch-size', '32'])
    assert rc == 0
    assert (tmp_path / 'cli' / 'meta' / 'train.txt').stat().st_size > 0
    rc = bp.main(['--coco-root', str(root), '--splits', 'train', 'test',
                  '--img-dir', str(cric_coco['img_dir']),
                  '--forbid-fields', str(cric_coco['test']),
                  '--out-dir', str(tmp_path / 'cli2'), '--patch-size', '32'])
    assert rc == 2
    assert 'forbid-fields' in capsys.readouterr().err
