"""The ROI classifier's paper config (Shi et al., ISBI 2022) says what the
paper says, and builds; its CPU configs stay on annotated cells."""
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from cervdet.models.layers.cell_vit import VIT_B16_IN21K_URL
from conftest import ROOT

CFG_DIR = ROOT / 'configs' / 'roi_cls'
PAPER = CFG_DIR / \
    'global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py'
CPU = CFG_DIR / \
    'global-local_r18-w32_att-blstm-vit_adamw-20e_1xb4_cervical-roi-512.py'


def test_paper_config_hyper_parameters():
    cfg = Config.fromfile(str(PAPER))
    m = cfg.model
    # Sec. 2.3: hybrid ViT-B (D = 768, 12 layers) pre-trained on ImageNet-21k
    vit = m.local_branch
    assert (vit.embed_dims, vit.depth, vit.num_heads) == (768, 12, 12)
    assert vit.init_cfg == dict(type='Pretrained',
                                checkpoint=VIT_B16_IN21K_URL,
                                prefix='backbone.')
    # Sec. 2.2 / 2.4: h_ROI 1024-d, d_k = d_v = 1024, Eq. 7 without biases
    assert m.global_branch.hidden_size * 2 == 1024
    assert m.global_branch.peephole  # Eq. 1
    assert m.cross_attention.d_k == 1024 and not m.cross_attention.qkv_bias
    # Sec. 2.4 rules 1-3, N = 10 %, L_cell / 3; Sec. 3: lambda 0.25
    assert m.cell_branches == dict(ratio=0.1, rule='shi', loss_weight=0.25,
                                   branch_average='all')
    # Sec. 3: SGD 3e-4, /10 every 30 epochs, 90 epochs, 224 px cells
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert cfg.optim_wrapper.optimizer.lr == 3e-4
    assert cfg.param_scheduler[0].step_size == 30
    assert cfg.param_scheduler[0].gamma == 0.1
    assert cfg.train_cfg.max_epochs == 90 and cfg.cell_size == 224
    # Sec. 1, 2.1: detected cells by default
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.cell_source == 'detections'
        assert ds.det_file.startswith('detections/')


def test_cpu_config_uses_annotated_cells_and_random_vit():
    cfg = Config.fromfile(str(CPU))
    assert cfg.model.local_branch.init_cfg is None
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.cell_source == 'annotations'
        assert cfg[loader].dataset.det_file is None


def test_paper_model_builds_and_computes_both_losses():
    """The paper-size model (ViT-B, 1024-d attention) with the download
    disabled: one loss step on two small bags of 2048x7x7 maps."""
    cfg = Config.fromfile(str(PAPER))
    cfg.model.local_branch.init_cfg = None  # nothing is downloaded in tests
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    assert len(model.local_branch.layers) == 12
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i, (n, y) in enumerate(((3, 0), (4, 2))):
        maps = torch.randn(n, 2048, 7, 7, generator=g)
        inputs.append(dict(pooled=maps.mean((2, 3)), maps=maps))
        samples.append(DataSample(metainfo=dict(img_path=f'r{i}.jpg'))
                       .set_gt_label(y))
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples))
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_roi', 'loss_cell'}
    assert all(torch.isfinite(v) for v in losses.values())
