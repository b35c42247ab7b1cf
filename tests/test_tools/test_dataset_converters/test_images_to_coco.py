"""tools/dataset_converters/images_to_coco.py: a folder of unlabeled images
-> a COCO file that mmdet's unlabeled CocoDataset reads."""
import json
import sys

import cv2
import numpy as np

from conftest import ROOT, run_tool

TOOL = ROOT / 'tools' / 'dataset_converters' / 'images_to_coco.py'


def _main(args):
    """Run the tool; its process (exit code, stdout, stderr)."""
    return run_tool([sys.executable, TOOL, *args], check=False)


def _folder(tmp_path, shared_data):
    folder = tmp_path / 'unlabeled'
    (folder / 'sub').mkdir(parents=True)
    crops = sorted((shared_data / 'cric_crops_bethesda' / 'NILM').glob('*.png'))
    for i, src in enumerate(crops[:3]):
        img = cv2.imread(str(src))
        cv2.imwrite(str(folder / f'tile_{i}.jpg'), img)
    cv2.imwrite(str(folder / 'sub' / 'wide.png'),
                np.zeros((20, 40, 3), np.uint8))
    return folder


def test_folder_to_coco_reads_sizes_and_categories(tmp_path, tiny_mosaic,
                                                   shared_data):
    folder = _folder(tmp_path, shared_data)
    labeled = tiny_mosaic / 'annotations' / 'train.json'
    out = tmp_path / 'unlabeled.json'
    assert _main([str(folder), '--categories-from', str(labeled),
                  '--out', str(out), '--recursive']).returncode == 0
    coco = json.loads(out.read_text())
    assert coco['annotations'] == []
    assert coco['categories'] == json.loads(labeled.read_text())['categories']
    names = [im['file_name'] for im in coco['images']]
    assert names == ['sub/wide.png', 'tile_0.jpg', 'tile_1.jpg', 'tile_2.jpg']
    assert (coco['images'][0]['width'], coco['images'][0]['height']) == \
        (40, 20)
    assert [im['id'] for im in coco['images']] == [1, 2, 3, 4]
    # mmdet's CocoDataset takes it as the unlabeled source
    from mmdet.datasets import CocoDataset
    classes = tuple(c['name'] for c in coco['categories'])
    ds = CocoDataset(ann_file=str(out), data_root='',
                     data_prefix=dict(img=str(folder) + '/'),
                     metainfo=dict(classes=classes),
                     filter_cfg=dict(filter_empty_gt=False), pipeline=[],
                     test_mode=False)
    assert len(ds) == 4 and ds[1]['instances'] == []
    # not overwritten without --force-overwrite
    assert _main([str(folder), '--categories-from', str(labeled),
                  '--out', str(out)]).returncode == 1
    assert len(json.loads(out.read_text())['images']) == 4


def test_corrupt_image_named_or_skipped(tmp_path, tiny_mosaic, shared_data):
    folder = _folder(tmp_path, shared_data)
    (folder / 'broken.jpg').write_bytes(b'not a jpeg at all')
    labeled = tiny_mosaic / 'annotations' / 'train.json'
    out = tmp_path / 'u.json'
    proc = _main([str(folder), '--categories-from', str(labeled),
                  '--out', str(out)])
    assert proc.returncode == 1
    err = proc.stderr
    assert 'broken.jpg' in err and '--skip-bad' in err and not out.exists()
    proc = _main([str(folder), '--categories-from', str(labeled),
                  '--out', str(out), '--skip-bad'])
    assert proc.returncode == 0
    assert len(json.loads(out.read_text())['images']) == 3
    assert 'broken.jpg' in proc.stderr


def test_empty_folder_error(tmp_path, tiny_mosaic):
    (tmp_path / 'empty').mkdir()
    proc = _main([str(tmp_path / 'empty'), '--categories-from',
                  str(tiny_mosaic / 'annotations' / 'train.json'), '--out',
                  str(tmp_path / 'x.json')])
    assert proc.returncode == 1
    assert 'no images' in proc.stderr
