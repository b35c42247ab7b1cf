"""tools/dataset_converters/voc_to_coco.py: the command line of
cervdet.datasets.converters.voc (tested in
tests/test_datasets/test_converters/test_voc.py)."""
import json
import sys

from conftest import ROOT, run_tool
from test_datasets.test_converters.test_voc import voc_dir  # noqa: F401

TOOL = ROOT / 'tools' / 'dataset_converters' / 'voc_to_coco.py'


def test_cli_unknown_class_is_a_clear_error(voc_dir, tmp_path):  # noqa: F811
    out = tmp_path / 'x.json'
    proc = run_tool([sys.executable, TOOL, voc_dir, '--out', out, '--classes',
                     'Normal'], check=False)
    assert proc.returncode == 2
    assert 'not in --classes' in proc.stderr
    assert not out.exists()


def test_cli_refuses_to_overwrite(voc_dir, tmp_path):  # noqa: F811
    out = tmp_path / 'voc.json'
    out.write_text('mine')
    proc = run_tool([sys.executable, TOOL, voc_dir, '--out', out], check=False)
    assert proc.returncode == 2 and out.read_text() == 'mine'
    run_tool([sys.executable, TOOL, voc_dir, '--out', out, '--overwrite'])
    assert len(json.loads(out.read_text())['annotations']) == 15
