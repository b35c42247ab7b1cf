"""Tests of the global-local ROI classifier (Shi et al., ISBI 2022)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from cervdet.models.layers import cell_branch_loss, cell_pseudo_targets

NAMES = ['NILM', 'LSIL', 'HSIL']
C = 8  # cached feature width
MAP = 2  # map size


def _cfg(**kw):
    cfg = dict(
        type='GlobalLocalROIClassifier',
        data_preprocessor=dict(type='ROIBagDataPreprocessor'),
        global_branch=dict(type='AttBLSTM', in_channels=C, hidden_size=6),
        local_branch=dict(type='CellViT', in_channels=C, embed_dims=8,
                          depth=1, num_heads=2, map_size=MAP),
        cross_attention=dict(type='ROICrossAttention', d_k=12),
        num_classes=3,
        class_names=NAMES,
        cell_branches=dict(ratio=0.25, rule='shi', loss_weight=0.25))
    cfg.update(kw)
    return cfg


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def _bags(counts=(3, 5, 1), labels=(0, 1, 2), seed=0, maps=True):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, (n, y) in enumerate(zip(counts, labels)):
        m = torch.randn(n, C, MAP, MAP, generator=g)
        # separable: a third of the cells of an abnormal ROI carry a marker
        k = max(1, n // 3)
        if y > 0:
            m[:k, y - 1] += 3.
        bag = dict(pooled=m.mean((2, 3)))
        if maps:
            bag['maps'] = m
        inputs.append(bag)
        samples.append(
            DataSample(metainfo=dict(img_path=f'roi_{i}.png', num_cells=n))
            .set_gt_label(y))
    return dict(inputs=inputs, data_samples=samples)


def test_loss_keys_and_composition():
    torch.manual_seed(0)
    model = _build(_cfg())
    data = model.data_preprocessor(_bags())
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_roi', 'loss_cell'}
    out = model._forward_all(data['inputs'])
    labels = torch.tensor([0, 1, 2])
    assert torch.allclose(losses['loss_roi'],
                          F.cross_entropy(out['logits'], labels))
    targets = cell_pseudo_targets(out['attention'], out['mask'], labels, 3,
                                  ratio=0.25, rule='shi',
                                  class_names=NAMES)
    ref = cell_branch_loss(out['cell_logits'], targets)
    assert torch.allclose(losses['loss_cell'], 0.25 * ref)
    # by hand: L_cell = (L_NILM + L_LSIL + L_HSIL) / 3, each the mean
    # two-way cross-entropy over the cells its branch uses
    per_branch = []
    for c in range(3):
        used = targets[..., c] >= 0
        per_branch.append(F.cross_entropy(out['cell_logits'][..., c, :][used],
                                          targets[..., c][used]))
    assert torch.allclose(losses['loss_cell'],
                          0.25 * sum(per_branch) / 3, atol=1e-6)
    # rule 1: all 3 cells of the NILM ROI are NILM positives
    assert targets[0, :3, 0].tolist() == [1, 1, 1]
    # the weight scales loss_cell only
    model1 = _build(_cfg(cell_branches=dict(ratio=0.25, rule='shi',
                                            loss_weight=1.0)))
    model1.load_state_dict(model.state_dict())
    losses1 = model1(**data, mode='loss')
    assert torch.allclose(losses1['loss_cell'], 4 * losses['loss_cell'])
    assert torch.allclose(losses1['loss_roi'], losses['loss_roi'])
    # no cell branches -> no loss_cell key
    model2 = _build(_cfg(cell_branches=None))
    assert set(model2(**data, mode='loss')) == {'loss_roi'}


def test_loss_cell_gradient_paths():
    torch.manual_seed(0)
    model = _build(_cfg(cell_branches=dict(ratio=0.25, rule='clam')))
    data = model.data_preprocessor(_bags())
    losses = model(**data, mode='loss')
    losses['loss_cell'].backward()
    # loss_cell reaches the local branch and the cell head, but not the
    # cross-attention query (the CA scores only select, detached)
    assert model.cell_head.weight.grad.abs().sum() > 0
    assert model.local_branch.patch_embed.weight.grad.abs().sum() > 0
    assert model.cross_attention.w_q.weight.grad is None or \
        model.cross_attention.w_q.weight.grad.abs().sum() == 0


def test_predict_outputs_and_padding_invariance():
    torch.manual_seed(0)
    model = _build(_cfg()).eval()
    data = model.data_preprocessor(_bags(counts=(3, 5, 1)))
    preds = model(**copy.deepcopy(data), mode='predict')
    for s, n in zip(preds, (3, 5, 1)):
        assert s.pred_score.shape == (3,)
        assert torch.allclose(s.pred_score.sum(), torch.tensor(1.))
        assert s.pred_label.item() == s.pred_score.argmax().item()
        assert s.cell_attention.shape == (n, )
        assert torch.allclose(s.cell_attention.sum(), torch.tensor(1.))
        assert s.cell_scores.shape == (n, 3)
        assert ((s.cell_scores >= 0) & (s.cell_scores <= 1)).all()
        assert s.cell_pred_labels.shape == (n, )
        assert s.cell_pred_labels.dtype == torch.long
        assert s.metainfo['img_path'].startswith('roi_')
    logits = model(**copy.deepcopy(data), mode='tensor')
    assert logits.shape == (3, 3)
    # garbage in padded slots changes nothing
    garbage = copy.deepcopy(data)
    pad = ~garbage['inputs']['mask']
    garbage['inputs']['pooled'][pad] = 1e6
    garbage['inputs']['maps'][pad] = float('nan')
    assert torch.allclose(model(**garbage, mode='tensor'), logits, atol=1e-5)
    # a batch of one ROI gives the same as inside the batch
    single = model.data_preprocessor(_bags(counts=(3, ), labels=(0, )))
    assert torch.allclose(model(**single, mode='tensor'), logits[:1],
                          atol=1e-5)


@pytest.mark.parametrize('branch', [
    dict(type='GatedAttentionMIL', in_channels=C, hidden_channels=6,
         attn_channels=4),
    dict(type='AttBLSTM', in_channels=C, hidden_size=3),
])
def test_global_only_baselines(branch):
    torch.manual_seed(0)
    model = _build(_cfg(global_branch=branch, local_branch=None,
                        cross_attention=None,
                        cell_branches=dict(rule='clam')))
    data = model.data_preprocessor(_bags(maps=False))
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_roi', 'loss_cell'}
    assert model.cell_head.in_features == C  # pooled features
    preds = model.eval()(**data, mode='predict')
    assert torch.allclose(preds[1].cell_attention.sum(), torch.tensor(1.))


def test_rnn_baseline_uniform_attention_and_errors():
    rnn = dict(type='RNNAggregator', cell='gru', in_channels=C,
               hidden_size=4)
    model = _build(_cfg(global_branch=rnn, local_branch=None,
                        cross_attention=None, cell_branches=None)).eval()
    preds = model(**model.data_preprocessor(_bags(maps=False)),
                  mode='predict')
    assert torch.allclose(preds[1].cell_attention, torch.full((5, ), 0.2))
    assert 'cell_scores' not in preds[1]
    with pytest.raises(ValueError, match='need attention scores'):
        _build(_cfg(global_branch=rnn, local_branch=None,
                    cross_attention=None))
    with pytest.raises(ValueError, match='needs a local_branch'):
        _build(_cfg(local_branch=None))
    with pytest.raises(ValueError, match='needs class_names'):
        _build(_cfg(class_names=None))
    with pytest.raises(ValueError, match='exactly NILM'):
        _build(_cfg(class_names=['NILM', 'LSIL', 'SCC']))
    with pytest.raises(ValueError, match='d_v'):
        _build(_cfg(cross_attention=dict(type='ROICrossAttention', d_v=5)))
    model = _build(_cfg())
    data = model.data_preprocessor(_bags(maps=False))
    with pytest.raises(ValueError, match='stage-4 maps'):
        model(**data, mode='tensor')


@pytest.mark.parametrize('paper_parts', [False, True])
def test_learns_separable_bags(paper_parts):
    """A short training run learns (loss halves, ROIs and cells right); with
    the paper's parts: peephole LSTM (Eq. 1), Eq. 7 without biases."""
    torch.manual_seed(0)
    cfg = _cfg()
    if paper_parts:
        cfg['global_branch'] = dict(cfg['global_branch'], peephole=True)
        cfg['cross_attention'] = dict(cfg['cross_attention'], qkv_bias=False)
    model = _build(cfg)
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=5e-3))
    counts = (6, 9, 4, 8, 5, 7)
    labels = (0, 1, 2, 2, 1, 0)
    first = last = None
    # without Eq. 7's biases the attention starts slower: 80 steps
    for step in range(80 if paper_parts else 40):
        data = _bags(counts, labels, seed=step)
        log = model.train_step(data, optim)
        total = float(torch.as_tensor(log['loss']).detach())
        first = total if first is None else first
        last = total
    assert last < 0.5 * first, (first, last)
    model.eval()
    test = _bags(counts, labels, seed=1000)
    preds = model.val_step(test)
    acc = sum(int(p.pred_label) == y for p, y in zip(preds, labels))
    assert acc >= 5
    # cell predictions for free: the marked cells of abnormal ROIs (the
    # first max(1, n // 3)) get the ROI class, the others NILM
    correct = total_cells = 0
    for p, n, y in zip(preds, counts, labels):
        gt = torch.zeros(n, dtype=torch.long)
        if y > 0:
            gt[:max(1, n // 3)] = y
        correct += int((p.cell_pred_labels == gt).sum())
        total_cells += n
    assert correct / total_cells >= 0.8


def test_pixel_mode_tiny_resnet_frozen_encoder():
    torch.manual_seed(0)
    encoder = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                   out_indices=(3, ))
    cfg = _cfg(
        data_preprocessor=dict(type='ROIBagDataPreprocessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], to_rgb=True),
        cell_encoder=encoder,
        encoder_chunk=2,
        global_branch=dict(type='AttBLSTM', in_channels=64, hidden_size=6),
        local_branch=dict(type='CellViT', in_channels=64, embed_dims=8,
                          depth=1, num_heads=2, map_size=2))
    model = _build(cfg)
    model.train()
    assert not model.cell_encoder.training  # frozen: stays in eval mode
    g = torch.Generator().manual_seed(0)
    crops = [torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8,
                           generator=g) for n in (3, 1)]
    samples = [DataSample(metainfo=dict(img_path=f'r{i}.png'))
               .set_gt_label(y) for i, y in enumerate((1, 2))]
    data = model.data_preprocessor(dict(inputs=crops, data_samples=samples))
    assert data['inputs']['cells'].shape == (2, 3, 3, 64, 64)
    losses = model(**data, mode='loss')
    (losses['loss_roi'] + losses['loss_cell']).backward()
    assert all(p.grad is None for p in model.cell_encoder.parameters())
    assert model.global_branch.w.grad.abs().sum() > 0
    # chunking does not change the result; pooled = mean of the map
    model.eval()
    logits = model(**data, mode='tensor')
    model.encoder_chunk = 256
    assert torch.allclose(model(**data, mode='tensor'), logits, atol=1e-5)
    pooled, maps, mask = model.extract_cells(data['inputs'])
    assert maps.shape == (4, 64, 2, 2)
    assert torch.allclose(pooled[mask], maps.mean((2, 3)), atol=1e-6)
    assert (pooled[~mask] == 0).all()
    preds = model(**data, mode='predict')
    assert preds[1].cell_attention.shape == (1, )
    # an unfrozen encoder is trained
    model_t = _build(dict(cfg, freeze_cell_encoder=False))
    model_t(**data, mode='loss')['loss_roi'].backward()
    assert model_t.cell_encoder.conv1.weight.grad.abs().sum() > 0
