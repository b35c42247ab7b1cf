"""Paper settings of the PCN (Fei et al., MICCAI 2023, paper 000).

- Sec. 2.1/3.1: the PCN is an ImageNet-initialised SE-ResNeXt-50; the
  ``senet://`` checkpoint scheme gives Cadene's/timm's weights to mmpretrain's
  ``SEResNeXt`` (key mapping checked with a strict load and equal outputs);
- Sec. 3.1: "All parameters are optimized by Adam ... 4e-5" in stage 2 too;
- stage 3 does not download the PCN's ImageNet weights (they come from the
  stage-2 checkpoint);
- a short stage-2 run with the paper's optimiser learns on real CRIC patches.
"""
import copy
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as CLS_MODELS

import cervdet  # noqa: F401
from cervdet.utils import convert_senet_state_dict

ROOT = Path(__file__).resolve().parents[1]
PCN_PAPER = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn_seresnext50-32x4d_gap_adam-30e_cervical-patches-bethesda-1024.py'
PCN_CPU = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn_resnet18-w32_gap_adam-12e_1xb32_cervical-patches-bethesda-512.py'
STAGE3 = ROOT / 'configs' / 'pcn_retinanet' / \
    'pcn-retinanet_r50_fpn_rank-rcc_adam-12e_cervical-mosaic-bethesda-1024.py'


def _seresnext(**kw):
    cfg = copy.deepcopy(Config.fromfile(str(PCN_PAPER)).model.backbone)
    cfg.update(kw)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return CLS_MODELS.build(cfg)


def _to_cadene(sd):
    """Cadene's pretrainedmodels names, written out independently."""
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith(('conv1.', 'bn1.')):
            k = 'layer0.' + k
        m = re.match(r'(layer\d+\.\d+)\.se_layer\.conv([12])\.conv\.(\w+)$', k)
        if m:
            k = f'{m[1]}.se_module.fc{m[2]}.{m[3]}'
        out[k] = v
    out['last_linear.weight'] = torch.zeros(1000, 2048)
    out['last_linear.bias'] = torch.zeros(1000)
    return out


def _to_timm(sd):
    out = OrderedDict()
    for k, v in sd.items():
        k = re.sub(r'\.se_layer\.conv([12])\.conv\.', r'.se.fc\1.', k)
        out[k] = v
    out['fc.weight'] = torch.zeros(1000, 2048)
    return out


def test_paper_pcn_config_is_imagenet_seresnext50_with_adam_4e5():
    cfg = Config.fromfile(str(PCN_PAPER))
    bb = cfg.model.backbone
    assert (bb.type, bb.depth, bb.groups, bb.width_per_group) == \
        ('SEResNeXt', 50, 32, 4)
    assert bb.init_cfg == dict(type='Pretrained',
                               checkpoint='senet://se_resnext50_32x4d')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('Adam', 4e-5, 0.)
    assert 'paramwise_cfg' not in cfg.optim_wrapper  # all parameters alike
    # no warm-up: 4e-5 is the rate of the first step
    assert [s.type for s in cfg.param_scheduler] == ['CosineAnnealingLR']


@pytest.mark.parametrize('layout', [_to_cadene, _to_timm, None])
def test_senet_scheme_loads_every_weight(layout, tmp_path):
    torch.manual_seed(0)
    src = _seresnext(init_cfg=None)
    src.eval()
    sd = src.state_dict()
    saved = layout(sd) if layout else {'state_dict': {
        'backbone.' + k: v for k, v in sd.items()}}
    path = tmp_path / 'w.pth'
    torch.save(saved, path)
    converted = convert_senet_state_dict(torch.load(path))
    assert set(converted) == set(sd)  # every key, nothing of the head
    dst = _seresnext(init_cfg=dict(type='Pretrained',
                                   checkpoint=f'senet://{path}'))
    dst.init_weights()
    dst.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(src(x)[0], dst(x)[0])


def test_senet_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match='not an SE-ResNe'):
        convert_senet_state_dict({'features.0.weight': torch.zeros(1)}, 'x')
    from cervdet.utils import load_senet_checkpoint
    with pytest.raises(FileNotFoundError, match='TORCH_HOME'):
        load_senet_checkpoint('senet://no_such_name')


def test_stage3_pcn_does_not_download_imagenet_weights():
    cfg = Config.fromfile(str(STAGE3))
    assert cfg.model.pcn.backbone.init_cfg.checkpoint.startswith('senet://')
    from cervdet.models.detectors.pcn_retinanet import PCNRetinaNet
    with DefaultScope.overwrite_default_scope('mmdet'):
        pcn, _ = PCNRetinaNet._build_pcn(cfg.model.pcn, 0)
    assert pcn.backbone.init_cfg is None or \
        pcn.backbone.init_cfg[0]['type'] != 'Pretrained'
    assert not any(isinstance(c, dict) and c.get('type') == 'Pretrained'
                   for c in (pcn.backbone.init_cfg or []))


def test_stage2_with_the_paper_optimiser_learns_on_real_cric_patches(
        shared_data, tmp_path):
    """CPU-size PCN, paper optimiser (Adam 4e-5, all parameters), 60 steps."""
    from cervdet.datasets import pcn_patches as bp
    from conftest import CRIC_TRAIN as TRAIN
    from conftest import cric_contract as _contract
    cric = shared_data / 'cric_cervix'
    ann = _contract(cric, TRAIN, tmp_path / 'train.json')
    bp.build_pcn_patches(tmp_path / 'p', {'train': (ann, cric / 'images')},
                         patch_size=64, progress=False)
    import cv2
    lines = (tmp_path / 'p' / 'meta' / 'train.txt').read_text().split('\n')
    items = [ln.split() for ln in lines if ln]
    imgs = torch.stack([torch.from_numpy(cv2.imread(
        str(tmp_path / 'p' / f))[..., ::-1].copy()).permute(2, 0, 1).float()
        for f, _ in items])
    labels = torch.tensor([int(lbl) for _, lbl in items])
    assert 0 < labels.sum() < len(labels)
    cpu = Config.fromfile(str(PCN_CPU))
    paper = Config.fromfile(str(PCN_PAPER))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = CLS_MODELS.build(cpu.model)
    model.init_weights()
    opt_cfg = dict(paper.optim_wrapper.optimizer)
    assert opt_cfg.pop('type') == 'Adam'
    opt = torch.optim.Adam(model.parameters(), **opt_cfg)
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    losses = []
    for step in range(60):
        idx = torch.randperm(len(items), generator=g)[:16]
        data = model.data_preprocessor(dict(
            inputs=list(imgs[idx]),
            data_samples=[DataSample().set_gt_label(int(labels[i]))
                          for i in idx]), True)
        loss = model(**data, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.85 * first, (first, last)


def test_stage1_and_stage3_losses_and_optimiser_follow_sec_2_4_and_3_1():
    for path in (ROOT / 'configs' / 'retinanet' /
                 'retinanet_r50_fpn_adam-24e_cervical-mosaic-bethesda-1024.py',
                 STAGE3):
        cfg = Config.fromfile(str(path))
        head = cfg.model.bbox_head
        # Sec. 2.4: Smooth-L1 regression; RetinaNet's focal classification
        assert head.loss_bbox == dict(type='SmoothL1Loss', beta=0.11,
                                      loss_weight=1.0)
        assert head.loss_cls.type == 'FocalLoss'
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.weight_decay) == ('Adam', 4e-5, 0.)
        assert cfg.train_pipeline[2].scale == (1024, 1024)  # Sec. 2
    model = Config.fromfile(str(STAGE3)).model
    # Sec. 2.2-2.4: margin 0.05, alpha 0.25, beta 1, K = 10, 7x7 ROIs,
    # 56x56 local-scale map (SE-ResNeXt stage 1 at 224 px), 224 px patches
    assert model.loss_rank == dict(type='RankingLoss', margin=0.05,
                                   loss_weight=0.25)
    assert model.loss_rcc == dict(type='RCCLoss', loss_weight=1.0)
    assert model.distill_cfg.topk == 10
    assert model.roi_extractor.roi_layer.output_size == 7
    assert model.roi_extractor.out_channels == 256
    assert model.pcn_local_stage == 0 and model.patch_cfg.size == 224
