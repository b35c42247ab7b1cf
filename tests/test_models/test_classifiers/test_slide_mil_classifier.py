"""SlideMILClassifier + its data preprocessor: top-k truncation and padding
(empty bags), loss_slide (BCE / CE) with gradients, predictions
(slide_score, attention per kept cell), score aggregators in predict only."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from cervdet.models.classifiers import SlideBagDataPreprocessor, pad_slide_bags


def _build(cfg):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def _bags():
    torch.manual_seed(0)
    scores = [torch.tensor([0.1, 0.9, 0.3, 0.7]), torch.zeros(0),
              torch.tensor([0.5, 0.2])]
    feats = [torch.randn(4, 3), torch.zeros(0, 0), torch.randn(2, 3)]
    boxes = [torch.arange(16.).view(4, 4), torch.zeros(0, 4),
             torch.arange(8.).view(2, 4) + 100]
    return scores, feats, boxes


def test_pad_slide_bags_topk():
    scores, feats, boxes = _bags()
    out = pad_slide_bags(scores, feats, boxes, top_k=2)
    assert torch.allclose(out['scores'], torch.tensor([[0.9, 0.7], [0., 0.],
                                                       [0.5, 0.2]]))
    assert out['mask'].tolist() == [[True, True], [False, False],
                                    [True, True]]
    assert out['index'].tolist() == [[1, 3], [-1, -1], [0, 1]]
    assert out['feats'].shape == (3, 2, 3)
    assert torch.equal(out['feats'][0], feats[0][[1, 3]])
    assert (out['feats'][1] == 0).all()
    assert torch.equal(out['bboxes'][0], boxes[0][[1, 3]])
    # without top_k: all cells, padded to K_max = 4, in file order
    out = pad_slide_bags(scores, feats, boxes)
    assert out['scores'].shape == (3, 4)
    assert out['index'][2].tolist() == [0, 1, -1, -1]
    # a batch of empty bags only
    out = pad_slide_bags([torch.zeros(0)], [torch.zeros(0, 5)], top_k=3)
    assert out['scores'].shape == (1, 0) and out['feats'].shape == (1, 0, 5)
    with pytest.raises(ValueError, match='different widths'):
        pad_slide_bags(scores[:1] + scores[2:],
                       [feats[0], torch.zeros(2, 5)])


def _batch(labels=(1, 0, 1), positive=(True, False, True)):
    scores, feats, boxes = _bags()
    inputs = [dict(scores=s, feats=f, bboxes=b)
              for s, f, b in zip(scores, feats, boxes)]
    samples = []
    for i, (lab, pos) in enumerate(zip(labels, positive)):
        s = DataSample(metainfo=dict(slide=f's{i}', is_positive=pos))
        samples.append(s.set_gt_label(lab))
    return dict(inputs=inputs, data_samples=samples)


def _model(**agg):
    cfg = dict(type='AttentionMILAggregator', in_channels=3, hidden=8)
    cfg.update(agg)
    return _build(dict(type='SlideMILClassifier',
                       data_preprocessor=dict(type='SlideBagDataPreprocessor',
                                              top_k=3),
                       aggregator=cfg))


def test_binary_loss_and_predict():
    model = _model()
    assert isinstance(model.data_preprocessor, SlideBagDataPreprocessor)
    data = model.data_preprocessor(_batch(), training=True)
    assert data['inputs']['scores'].shape == (3, 3)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_slide'}
    logits = model(**data, mode='tensor')
    expect = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([1., 0., 1.]))
    assert losses['loss_slide'].item() == pytest.approx(expect.item())
    losses['loss_slide'].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert model.aggregator.mil.attn_w.weight.grad.abs().sum() > 0

    preds = model(**model.data_preprocessor(_batch()), mode='predict')
    assert len(preds) == 3
    p0 = torch.sigmoid(logits[0]).item()
    assert preds[0].slide_score == pytest.approx(p0, abs=1e-6)
    assert preds[0].pred_score.tolist() == pytest.approx([1 - p0, p0],
                                                         abs=1e-6)
    # 3 kept cells (of 4) for slide 0, by score: rows 1, 3, 2 of the bag
    assert preds[0].cell_index.tolist() == [1, 3, 2]
    assert preds[0].cell_attention.sum().item() == pytest.approx(1.)
    assert preds[0].cell_bboxes.shape == (3, 4)
    # empty slide: no cell, finite score
    assert preds[1].cell_attention.numel() == 0
    assert 0. < preds[1].slide_score < 1.
    assert preds[2].cell_index.tolist() == [0, 1]
    # metainfo kept (the metric reads is_positive)
    assert preds[1].is_positive is False
    # the inferencer's entry: padded bags, top_k applied, same scores
    scores, feats, _ = _bags()
    s = torch.zeros(3, 4)
    f = torch.zeros(3, 4, 3)
    m = torch.zeros(3, 4, dtype=torch.bool)
    for i, (sc, fe) in enumerate(zip(scores, feats)):
        s[i, :len(sc)], m[i, :len(sc)] = sc, True
        if len(sc):
            f[i, :len(sc)] = fe
    got = model.slide_score_from_bag(s, m, f)
    assert got.tolist() == pytest.approx([p.slide_score for p in preds],
                                         abs=1e-6)


def test_grades_ce_and_slide_score():
    model = _build(dict(
        type='SlideMILClassifier',
        aggregator=dict(type='AttentionMILAggregator', in_channels=3,
                        hidden=8, num_classes=3),
        classes=('NILM', 'LSIL', 'HSIL'), class_weight=[1., 2., 3.]))
    data = model.data_preprocessor(_batch(labels=(2, 0, 1)))
    logits = model(**data, mode='tensor')
    assert logits.shape == (3, 3)
    loss = model(**data, mode='loss')['loss_slide']
    expect = torch.nn.functional.cross_entropy(
        logits, torch.tensor([2, 0, 1]), weight=torch.tensor([1., 2., 3.]))
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    preds = model(**data, mode='predict')
    probs = torch.softmax(logits, 1)
    assert preds[0].slide_score == pytest.approx(1 - probs[0, 0].item(),
                                                 abs=1e-6)
    assert int(preds[0].pred_label) == int(probs[0].argmax())
    bad = model.data_preprocessor(_batch(labels=(3, 0, 1)))
    with pytest.raises(ValueError, match='outside'):
        model(**bad, mode='loss')
    with pytest.raises(ValueError, match='3 classes'):
        _build(dict(type='SlideMILClassifier',
                    aggregator=dict(type='AttentionMILAggregator',
                                    in_channels=3, num_classes=2),
                    classes=('NILM', 'LSIL', 'HSIL')))


def test_score_aggregator_predict_only():
    model = _build(dict(type='SlideMILClassifier',
                        aggregator=dict(type='MaxScoreAggregator')))
    data = model.data_preprocessor(_batch())
    preds = model(**data, mode='predict')
    assert [p.slide_score for p in preds] == pytest.approx([0.9, 0., 0.5])
    assert preds[0].cell_attention.tolist() == [0., 1., 0., 0.]
    with pytest.raises(ValueError, match='nothing to learn'):
        model(**data, mode='loss')
