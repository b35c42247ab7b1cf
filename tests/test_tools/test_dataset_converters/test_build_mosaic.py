"""tools/dataset_converters/build_mosaic.py: the command line of
cervdet.datasets.synthesis.build_mosaic_dataset (tested in
tests/test_datasets/test_synthesis/)."""
import json
import sys

from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'build_mosaic.py'


def test_cli_refuses_to_overwrite(shared_data, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    # the CLI refuses a non-empty --out-dir (exit code 2), and accepts --overwrite
    argv = [sys.executable, TOOL, '--data-root', shared_data, '--out-dir', out,
            '--img-size', '128', '--max-cell-size', '64', '--num-train', '2',
            '--num-val', '2', '--num-test', '2', '--background', 'paper']
    proc = run_tool(argv, check=False)
    assert proc.returncode == 2 and '--overwrite' in proc.stderr
    run_tool(argv + ['--overwrite', '--seed', '5'])
    assert (out / 'notes.txt').read_text() == 'mine'
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['config']['seed'] == 5 and meta['config']['img_size'] == 128
