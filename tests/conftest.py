"""Shared pytest fixtures of cervdet."""
import csv
import json
import os
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmdet.utils import register_all_modules

import cervdet  # noqa: F401  (registers cervdet's modules)

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _mmdet_default_scope():
    """Tests build mmdet transforms/models by name: 'mmdet' is the default
    scope of each test (runners a test builds may switch it; tests of
    mmpretrain parts use DefaultScope.overwrite_default_scope('mmpretrain'))."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


#: Real public data beside the project (``../shared/data`` from the root, or
#: ``$CERVDET_SHARED_DATA``); read by path, never copied into the project.
SHARED_DATA = Path(os.environ.get(
    'CERVDET_SHARED_DATA',
    Path(__file__).resolve().parents[1] / '..' / 'shared' / 'data'))


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """Path of the shared real data folder; fails clearly when it is missing."""
    path = SHARED_DATA.resolve()
    if not (path / 'README.md').is_file():
        pytest.fail(f'shared data not found at {path}: the tests need the real '
                    'data folder ../shared/data beside the project root (or set '
                    'CERVDET_SHARED_DATA); see docs/data_preparation.md')
    return path


ROOT = Path(__file__).resolve().parents[1]
CPU_CONFIG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-20e_1xb4_cervical-mosaic-bethesda-512.py'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args, timeout=1200, env=None, check=True):
    """Run a command from the project root; print its output on failure."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env['PYTHON'] = sys.executable
    full_env['PYTHONPATH'] = str(ROOT)
    full_env.update(env or {})
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(map(str, args))} exited {proc.returncode}\n'
            f'--- stdout ---\n{proc.stdout[-6000:]}\n'
            f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


def write_config(path: Path, data_root: Path, base: Path = CPU_CONFIG,
                 extra: str = '', batch_size: int = 2,
                 test_split: str = 'test') -> Path:
    """A config that trains ``base`` on the mosaic set in ``data_root``.

    ``extra`` is appended as is: it must not reassign the dataloaders (a
    reassignment replaces the dicts written here, data_root included), hence
    ``batch_size`` and ``test_split`` (the split tools/test.py evaluates).
    """
    root = str(data_root).rstrip('/') + '/'
    path.write_text(f"""
_base_ = [{str(base)!r}]
data_root = {root!r}
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root,
                 ann_file='annotations/{test_split}.json',
                 data_prefix=dict(img='images/{test_split}/')))
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/{test_split}.json')
default_hooks = dict(logger=dict(interval=1),
                     visualization=dict(type='DetVisualizationHook'))
randomness = dict(seed=0)
{extra}
""")
    return path


@pytest.fixture(scope='session')
def tiny_mosaic(tmp_path_factory, shared_data):
    """A small 256x256 mosaic set (real crops) built once per test session."""
    from cervdet.datasets.synthesis import build_mosaic_dataset
    out = tmp_path_factory.mktemp('tiny_mosaic') / 'mosaic'
    build_mosaic_dataset(
        out, data_root=shared_data, source='bethesda', preset='512',
        progress=False, img_size=256, num_train=8, num_val=4, num_test=4,
        seed=0)
    return out


def ensure_cric_coco(shared_data: Path) -> None:
    """Build ``data/cric-cervix`` (the real CRIC fields as COCO, the one
    per-field split of the evidence suites) with the converter when a fresh
    checkout lacks it; seconds."""
    if (ROOT / 'data/cric-cervix/annotations/test.json').is_file() and (
            ROOT / 'data/cric-cervix/splits.csv').is_file():
        return
    src = shared_data / 'cric_cervix'
    subprocess.run([
        sys.executable, 'tools/dataset_converters/cric_to_coco.py', '--csv',
        str(src / 'classifications.csv'), '--img-dir', str(src / 'images'),
        '--img-dir', str(src / 'native'), '--out-dir', 'data/cric-cervix'
    ], cwd=ROOT, check=True, capture_output=True)


#: The five abnormal classes of the ``abnormal5`` CRIC contract.
CRIC_ABNORMAL5 = ['ASC-US', 'ASC-H', 'LSIL', 'HSIL', 'SCC']
CRIC_TBS = {'Negative for intraepithelial lesion': 'NILM'}
#: CRIC fields (stems) with abnormal and NILM cells, read from the CSV.
CRIC_TRAIN = ['ba9d94a8fdbaba01220db89cde170b24', '363b6b00d925e5c52694b8f7b678c53b']
CRIC_TEST = ['ac20a24b37b7e87dcc375e6b7420d40e']
CRIC_BOX = 46  # px at 688x510, about a nucleus-centred cell


def cric_contract(cric: Path, stems, out: Path) -> Path:
    """A COCO file of the CRIC contract (abnormal5) for ``stems``, written
    from CRIC's own ``classifications.csv`` (abnormal cells are boxes, NILM
    cells ``images[].other_points``), independent of the converter."""
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
            cls = CRIC_TBS.get(r['bethesda_system'], r['bethesda_system'])
            if cls == 'NILM':
                pts.append(dict(point=[x, y], bethesda_class=cls,
                                cric_cell_id=int(r['cell_id'])))
                continue
            x1, y1 = max(0., x - CRIC_BOX / 2), max(0., y - CRIC_BOX / 2)
            x2, y2 = min(w, x + CRIC_BOX / 2), min(h, y + CRIC_BOX / 2)
            anns.append(dict(
                id=len(anns) + 1, image_id=i,
                category_id=CRIC_ABNORMAL5.index(cls) + 1,
                bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                iscrowd=0, point=[x, y], cric_cell_id=int(r['cell_id']),
                bethesda_class=cls))
        images.append(dict(id=i, file_name=f'{stem}.jpg', width=w, height=h,
                           cric_image_id=int(rows[stem][0]['image_id']),
                           source_size=[1376, 1020], other_points=pts))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(CRIC_ABNORMAL5)])))
    return out


def blob_image():
    """Glass with three stained cells (cytoplasm + darker nucleus) and their
    boxes: ``(BGR uint8 [200, 300, 3], float32 [3, 4] xyxy)``."""
    img = np.full((200, 300, 3), (235, 230, 240), np.uint8)
    cells = [(60, 60, 30), (180, 70, 22), (230, 150, 35)]  # cx, cy, radius
    for cx, cy, r in cells:
        cv2.circle(img, (cx, cy), r, (200, 170, 190), -1)
        cv2.circle(img, (cx + 3, cy - 2), r // 3, (110, 60, 90), -1)
    gts = np.array([[cx - r, cy - r, cx + r + 1, cy + r + 1]
                    for cx, cy, r in cells], np.float32)
    return img, gts
