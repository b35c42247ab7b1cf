"""tools/train.py and tools/test.py on wrong input: a checkpoint
of another architecture, images that do not match their annotations, an
unreadable val image, a type-name typo and a diverging loss each stop with
a message naming the cause; a test never rewrites the training's config
copy."""
import shutil
import sys

import cv2
import pytest
import torch

from conftest import CPU_CONFIG, ROOT, run_tool, write_config

SMALL = ['train_dataloader.dataset.indices=4', 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=100']


def _checkpoint(path, **model_over):
    """Weights of the CPU RetinaNet config with ``model_over`` changes."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(str(CPU_CONFIG)).model
    for key, value in model_over.items():
        node = cfg
        *parents, leaf = key.split('.')
        for p in parents:
            node = node[p]
        node[leaf] = value
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def _test(cfg, ckpt, work, *extra, check=True):
    return run_tool([sys.executable, ROOT / 'tools' / 'test.py', cfg, ckpt,
                     '--work-dir', work, *extra], check=check)


def _train(cfg, work, *opts, check=False):
    return run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
                     '--work-dir', work, '--cfg-options', *SMALL, *opts],
                    check=check)


@pytest.mark.parametrize('change,expected', [
    ({'bbox_head.num_classes': 11},
     'bbox_head.retina_cls.weight [99, 64, 3, 3] vs [45, 64, 3, 3]'),
    ({'backbone.depth': 50, 'neck.in_channels': [128, 256, 512, 1024]},
     'unexpected keys in the checkpoint'),
])
def test_checkpoint_of_another_architecture_refused(tiny_mosaic, tmp_path,
                                                    change, expected):
    cfg = write_config(tmp_path / 'cfg.py', tiny_mosaic)
    ckpt = _checkpoint(tmp_path / 'other.pth', **change)
    proc = _test(cfg, ckpt, tmp_path / 'work', check=False)
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in proc.stderr
    assert f'checkpoint {ckpt} does not fit the model' in proc.stderr
    assert expected in proc.stderr
    assert 'bbox_mAP' not in proc.stdout  # no table of zeros


def test_test_output_in_its_own_folder(tiny_mosaic, tmp_path):
    """The training's config copy in the work dir is left as it is; the
    test's config (with its test-time options) goes to <work>/<timestamp>/."""
    cfg = write_config(tmp_path / 'cfg.py', tiny_mosaic)
    work = tmp_path / 'work'
    work.mkdir()
    training_copy = work / 'cfg.py'
    training_copy.write_text('# the config copy tools/train.py wrote\n')
    ckpt = _checkpoint(work / 'epoch_1.pth')
    _test(cfg, ckpt, work, '--cfg-options', 'model.test_cfg.score_thr=0.0')
    assert training_copy.read_text() == \
        '# the config copy tools/train.py wrote\n'
    runs = [p for p in work.iterdir() if p.is_dir()]
    assert len(runs) == 1
    test_copy = (runs[0] / 'cfg.py').read_text()
    assert 'score_thr=0.0' in test_copy and 'load_from' in test_copy
    assert list(runs[0].glob('*.json')), 'metrics of the test'


def _copy_set(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_image_of_another_size_stops_before_training(tiny_mosaic, tmp_path):
    data = _copy_set(tiny_mosaic, tmp_path / 'data')
    img = sorted((data / 'images' / 'train').iterdir())[0]
    cv2.imwrite(str(img), cv2.resize(cv2.imread(str(img)), (200, 180)))
    cfg = write_config(tmp_path / 'cfg.py', data)
    work = tmp_path / 'work'
    proc = _train(cfg, work)
    assert proc.returncode != 0
    assert f'{img} is 200x180 px (width x height) but the annotation says ' \
        '256x256' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert not list(work.glob('*.pth'))


def test_unreadable_val_image_found_before_training(tiny_mosaic, tmp_path):
    data = _copy_set(tiny_mosaic, tmp_path / 'data')
    img = sorted((data / 'images' / 'val').iterdir())[-1]
    img.write_bytes(b'\xff\xd8 half-copied' * 20)
    cfg = write_config(tmp_path / 'cfg.py', data)
    proc = _train(cfg, tmp_path / 'work')
    assert proc.returncode != 0
    assert f'{img} is not a readable image' in proc.stderr
    assert 'val images do not match' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr


def test_type_typo_gets_suggestions(tiny_mosaic, tmp_path):
    cfg = write_config(tmp_path / 'cfg.py', tiny_mosaic)
    proc = _train(cfg, tmp_path / 'work', 'model.type=RetinaNett')
    assert proc.returncode != 0
    assert "RetinaNett is not in the mmdet::model registry" in proc.stderr
    assert "Did you mean 'RetinaNet'" in proc.stderr


def test_non_finite_loss_stops_training(tiny_mosaic, tmp_path):
    cfg = write_config(tmp_path / 'cfg.py', tiny_mosaic)
    work = tmp_path / 'work'
    proc = _train(cfg, work, 'optim_wrapper.optimizer.lr=1e30',
                  'optim_wrapper.clip_grad=None')
    assert proc.returncode != 0
    err = proc.stderr
    assert 'FloatingPointError: non-finite loss at iteration' in err
    assert 'Images of this batch: ' in err
    assert str(tiny_mosaic / 'images' / 'train') in err
    assert not list(work.glob('*.pth'))


def test_existing_out_file_and_amp_on_cpu_refused(tiny_mosaic, tmp_path):
    cfg = write_config(tmp_path / 'cfg.py', tiny_mosaic)
    out = tmp_path / 'preds.pkl'
    out.write_bytes(b'earlier predictions')
    proc = _test(cfg, _checkpoint(tmp_path / 'c.pth'), tmp_path / 'w',
                 '--out', out, check=False)
    assert proc.returncode != 0
    assert f'--out {out} exists' in proc.stderr
    assert out.read_bytes() == b'earlier predictions'
    proc = run_tool([sys.executable, ROOT / 'tools' / 'train.py', cfg,
                     '--work-dir', tmp_path / 'w2', '--amp'], check=False)
    assert proc.returncode != 0 and '--amp needs a CUDA' in proc.stderr
