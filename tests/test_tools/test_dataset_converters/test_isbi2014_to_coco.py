"""tools/dataset_converters/isbi2014_to_coco.py: the command line of
cervdet.datasets.converters.isbi2014 (tested in
tests/test_datasets/test_converters/test_isbi2014.py)."""
import json
import sys

from conftest import ROOT, run_tool
from test_datasets.test_converters.test_isbi2014 import isbi_dir  # noqa: F401

TOOL = ROOT / 'tools' / 'dataset_converters' / 'isbi2014_to_coco.py'


def test_cli_overwrite(isbi_dir, tmp_path):  # noqa: F811
    out = tmp_path / 'o.json'
    out.write_text('keep')
    argv = [sys.executable, TOOL, '--img-dir', isbi_dir, '--out', out]
    proc = run_tool(argv, check=False)
    assert proc.returncode == 2 and out.read_text() == 'keep'
    run_tool(argv + ['--overwrite'])
    assert len(json.loads(out.read_text())['images']) == 12
