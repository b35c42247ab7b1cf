"""AttentionMILAggregator: attention sums to 1 over valid cells and is 0
on padding / empty bags, top-k, grades, gradients reach the MIL
parameters, errors."""
import pytest
import torch

from cervdet.models.slide_aggregators import AttentionMILAggregator

# 3 slides, unsorted cells; slide 1 has no valid cell, padding holds
# garbage that must never win
SCORES = torch.tensor([[0.2, 0.9, 0.5, 0.99, 5.0],
                       [7.0, 8.0, 9.0, 9.0, 9.0],
                       [0.1, 0.4, 0.3, 0.8, 0.6]])
MASK = torch.tensor([[1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0],
                     [1, 1, 1, 1, 1]]).bool()


def test_attention_mil_attention_and_empty_bags():
    torch.manual_seed(0)
    agg = AttentionMILAggregator(in_channels=6, hidden=8, dropout=0.)
    feats = torch.randn(3, 5, 6)
    feats[0, 3:] = float('nan')  # garbage in padding must not leak
    logit, att = agg(SCORES, MASK, feats, return_attention=True)
    assert logit.shape == (3, ) and torch.isfinite(logit).all()
    assert att.shape == (3, 5)
    assert att[0].sum().item() == pytest.approx(1.)
    assert att[2].sum().item() == pytest.approx(1.)
    assert (att[0, 3:] == 0).all() and (att[1] == 0).all()
    assert (att[0, :3] > 0).all()
    # the empty slide's logit is the bias; its prob is finite
    assert logit[1].item() == pytest.approx(agg.head.bias.item())
    prob = agg.predict_proba(SCORES, MASK, feats)
    assert torch.allclose(prob, torch.sigmoid(logit))
    # padding values do not change the valid slides' logits
    feats2 = feats.clone()
    feats2[0, 3:] = 100.
    s2 = SCORES.clone()
    s2[0, 3:] = -7.
    assert torch.allclose(agg(s2, MASK, feats2)[[0, 2]], logit[[0, 2]])


def test_attention_mil_grades_topk_and_gradients():
    torch.manual_seed(0)
    agg = AttentionMILAggregator(in_channels=4, hidden=8, num_classes=3,
                                 top_k=2)
    feats = torch.randn(3, 5, 4, requires_grad=True)
    logits, att = agg(SCORES, MASK, feats, return_attention=True)
    assert logits.shape == (3, 3)
    # only the 2 top cells get attention (slide 0: cells 1, 2; slide 2: 3, 4)
    assert (att[0, [0, 3, 4]] == 0).all() and (att[2, :3] == 0).all()
    assert att[0].sum().item() == pytest.approx(1.)
    assert agg.predict_proba(SCORES, MASK, feats).sum(1).tolist() == \
        pytest.approx([1., 1., 1.])
    logits.sum().backward()
    for name, p in agg.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert agg.mil.embed[0].weight.grad.abs().sum() > 0
    # a cell outside the top-2 gets no gradient
    assert feats.grad[0, 0].abs().sum() == 0
    assert feats.grad[0, 1].abs().sum() > 0


def test_attention_mil_scores_only_and_errors():
    agg = AttentionMILAggregator(in_channels=0, hidden=4)
    assert agg(SCORES, MASK).shape == (3, )
    with pytest.raises(ValueError, match='in_channels > 0'):
        AttentionMILAggregator(in_channels=0, use_scores=False)
    agg = AttentionMILAggregator(in_channels=4)
    with pytest.raises(ValueError, match='in_channels=3'):
        agg(SCORES, MASK, torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match='needs cell feats'):
        agg(SCORES, MASK)
