"""init_detector_strict: a checkpoint of another config is an error (mmdet's
init_detector only warns and predicts with partly random weights)."""
import pytest
import torch

from cervdet.apis import init_detector_strict
from cervdet.testing import random_scoring_detector
from conftest import CPU_CONFIG, ROOT

HERLEV_CFG = ROOT / 'configs' / 'retinanet' / \
    'retinanet_r18-w32_fpn_adam-12e_1xb4_herlev-roi-512.py'


def test_strict_loading(tmp_path):
    model = random_scoring_detector(str(CPU_CONFIG))
    ckpt = tmp_path / 'bethesda.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=model.dataset_meta)), ckpt)
    loaded = init_detector_strict(str(CPU_CONFIG), str(ckpt))
    assert loaded.dataset_meta['classes'] == model.dataset_meta['classes']
    assert not loaded.training and loaded.cfg is not None
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    # 5-class weights into the 2-class Herlev detector: refused, with the fix
    with pytest.raises(ValueError, match='does not fit the model'):
        init_detector_strict(str(HERLEV_CFG), str(ckpt))
    with pytest.raises(FileNotFoundError):
        init_detector_strict(str(CPU_CONFIG), str(tmp_path / 'missing.pth'))
    assert init_detector_strict(str(CPU_CONFIG)).dataset_meta == {}
