"""tools/dataset_converters/check_coco.py: the command line of
cervdet.datasets.coco_checks (tested in tests/test_datasets/test_coco_checks.py)."""
import copy
import json
import sys

from conftest import ROOT, run_tool
from test_datasets.test_coco_checks import CLEAN, dataset  # noqa: F401

TOOL = ROOT / 'tools' / 'dataset_converters' / 'check_coco.py'


def _main(args):
    return run_tool([sys.executable, TOOL, *args], check=False)


def test_cli_exit_codes(dataset):  # noqa: F811
    tmp_path, img_dir = dataset
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(CLEAN))
    proc = _main([ann, img_dir, '--check-images'])
    assert proc.returncode == 0
    assert 'result: OK' in proc.stdout
    coco = copy.deepcopy(CLEAN)
    coco['annotations'][0]['category_id'] = 7
    ann.write_text(json.dumps(coco))
    report_file = tmp_path / 'report.json'
    proc = _main([ann, img_dir, '--json-report', report_file])
    assert proc.returncode == 1
    out = proc.stdout
    assert 'unknown category id: 1' in out and 'fix:' in out
    assert json.loads(report_file.read_text())['errors'] == {'unknown_category_id': 1}


def test_cli_classes(dataset):  # noqa: F811
    tmp_path, img_dir = dataset
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(CLEAN))
    proc = _main([ann, img_dir, '--classes', 'HSIL', 'LSIL'])
    assert proc.returncode == 0
    assert 'result: OK' in proc.stdout
    proc = _main([ann, '--img-dir', img_dir, '--classes', 'HSIL'])
    assert proc.returncode == 1
    out = proc.stdout
    assert 'category name not among the classes: 1' in out
    assert 'name=LSIL' in out and 'fix:' in out
