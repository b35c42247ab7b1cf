"""MMDetection's own tools/train.py (as in a plain MMDetection 3.3 checkout)
trains a cervdet config: custom_imports and runner_type do the rest."""
import sys
from pathlib import Path

import mmdet

from conftest import run_tool, write_config


def test_mmdet_train_py_runs_cervdet_config(tiny_mosaic, tmp_path):
    mmdet_train = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    assert mmdet_train.is_file()
    cfg = write_config(
        tmp_path / 'cfg.py', tiny_mosaic,
        extra='train_cfg = dict(max_epochs=1, val_interval=1)')
    work = tmp_path / 'work'
    proc = run_tool([sys.executable, mmdet_train, cfg, '--work-dir', work],
                    env=dict(PYTHONPATH=''))
    assert (work / 'epoch_1.pth').is_file()
    out = proc.stdout + proc.stderr
    assert 'coco/bbox_mAP' in out or 'results of the whole dataset is empty' \
        in out
