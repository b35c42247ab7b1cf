"""cervdet.datasets.pcn_patches and build_pcn_patches.py on the real CRIC fields
(COCO contract of cric_to_coco).

The COCO files are written by ``conftest.cric_contract`` from CRIC's own
``classifications.csv`` in the ``abnormal5`` form of the contract (abnormal
cells are boxes, NILM cells are ``images[].other_points``), so the test does
not depend on the converter.
"""
import json
import sys

import pytest

from cervdet.datasets import pcn_patches as bp
from conftest import CRIC_TEST as TEST
from conftest import CRIC_TRAIN as TRAIN
from conftest import ROOT
from conftest import cric_contract as _contract
from conftest import run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'build_pcn_patches.py'


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


def _main(args):
    """Run the command line with ``args``; its completed process."""
    return run_tool([sys.executable, TOOL, *args], check=False)


def test_cli_with_one_image_folder(cric_coco, tmp_path):
    root = cric_coco['train'].parents[1]
    proc = _main(['--coco-root', str(root), '--splits', 'train',
                  '--img-dir', str(cric_coco['img_dir']),
                  '--forbid-fields', str(cric_coco['test']),
                  '--out-dir', str(tmp_path / 'cli'), '--patch-size', '32'])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'cli' / 'meta' / 'train.txt').stat().st_size > 0
    proc = _main(['--coco-root', str(root), '--splits', 'train', 'test',
                  '--img-dir', str(cric_coco['img_dir']),
                  '--forbid-fields', str(cric_coco['test']),
                  '--out-dir', str(tmp_path / 'cli2'), '--patch-size', '32'])
    assert proc.returncode == 2
    assert 'forbid-fields' in proc.stderr
