"""Every shipped config parses; the RetinaNet configs build their models; a
config with custom_imports registers cervdet without importing it first."""
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from conftest import ROOT

CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)


def test_configs_exist():
    names = {p.name for p in CONFIGS}
    assert 'retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py' in names
    assert ('retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512'
            '.py') in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_parses(path: Path):
    cfg = Config.fromfile(str(path))
    assert cfg.get('default_scope') in ('mmdet', 'mmpretrain')
    assert 'cervdet' in cfg.get('custom_imports', {}).get('imports', [])
    # a `_delete_` with nothing to delete in the bases stays in the final
    # config and breaks the build of that part (e.g. the train loop)
    assert '_delete_' not in cfg.pretty_text


@pytest.mark.parametrize(
    'name', [p.name for p in CONFIGS if p.parent.name == 'retinanet'])
def test_retinanet_configs_build_and_run(name):
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(str(ROOT / 'configs' / 'retinanet' / name))
    cfg.model.backbone.init_cfg = None  # nothing is downloaded in tests
    model = MODELS.build(cfg.model)
    model.init_weights()
    # the five Bethesda classes, or the config's own class list
    classes = (cfg.train_dataloader.dataset.get('metainfo') or {}).get(
        'classes', ('ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC'))
    assert model.bbox_head.num_classes == len(classes)
    data = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_items=[3, 0],
                          num_classes=len(classes))
    data = model.data_preprocessor(data, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    assert torch.isfinite(total)


def test_custom_imports_register_cervdet_in_a_fresh_process():
    """What a plain MMDetection checkout does with our config."""
    code = (
        'from mmengine.config import Config\n'
        'from mmdet.registry import DATASETS\n'
        'from mmengine.registry import RUNNERS\n'
        "assert DATASETS.get('CervicalCocoDataset') is None\n"
        f"cfg = Config.fromfile({str(CONFIGS[0])!r})\n"
        "assert DATASETS.get('CervicalCocoDataset') is not None\n"
        "assert RUNNERS.get('CervdetRunner') is not None\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('ok')
