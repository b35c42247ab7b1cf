"""Batched top-K selection of suspicious boxes (threshold, NMS, K per image)."""
import torch
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

from cervdet.models.layers import (
    flatten_dense_outputs,
    rank_within_groups,
    select_topk_suspicious,
)

CODER = DeltaXYWHBBoxCoder(target_means=[0.] * 4, target_stds=[1.] * 4)


def _priors(n, size=10., step=20.):
    """``n`` non-overlapping square priors on a row."""
    x1 = torch.arange(n).float() * step
    return torch.stack([x1, torch.zeros(n), x1 + size, torch.full((n, ), size)],
                       dim=1)


def _logit(p):
    return torch.logit(torch.tensor(p))


def test_rank_within_groups():
    group = torch.tensor([1, 0, 1, 1, 0, 2])
    assert rank_within_groups(group, 3).tolist() == [0, 0, 1, 2, 1, 0]
    assert rank_within_groups(torch.zeros(0, dtype=torch.long), 2).numel() == 0


def test_fewer_than_k_none_and_capped():
    b, m, c = 3, 30, 2
    logits = torch.full((b, m, c), -10.)
    # image 0: 3 boxes above threshold (K=10 > 3 available)
    logits[0, [4, 7, 9], [1, 0, 1]] = _logit([0.6, 0.9, 0.3])
    # image 1: nothing above threshold
    logits[1, 5, 0] = _logit(0.04)
    # image 2: 15 separate boxes -> capped at K = 10, the best ones
    probs2 = torch.linspace(0.2, 0.95, 15)
    logits[2, torch.arange(15), 0] = torch.logit(probs2)
    sel = select_topk_suspicious(
        logits, torch.zeros(b, m, 4), _priors(m), CODER,
        img_shapes=torch.tensor([[100, 1000]] * b), topk=10, score_thr=0.05)
    assert sel['batch_idx'].tolist() == [0] * 3 + [2] * 10
    # image 0 sorted by score, prior/label as planted
    assert sel['prior_idx'][:3].tolist() == [7, 4, 9]
    assert sel['labels'][:3].tolist() == [0, 1, 1]
    assert torch.allclose(sel['scores'][:3], torch.tensor([0.9, 0.6, 0.3]))
    # image 2: the 10 best of 15
    assert sel['prior_idx'][3:].tolist() == list(range(14, 4, -1))
    # scores are the probabilities of (prior, label) in the logits
    gathered = logits[sel['batch_idx'], sel['prior_idx'],
                      sel['labels']].sigmoid()
    assert torch.allclose(gathered, sel['scores'])
    # rois: batch index + decoded (zero deltas: the prior) box
    assert torch.allclose(sel['rois'][:, 0], sel['batch_idx'].float())
    assert torch.allclose(sel['rois'][:, 1:], _priors(m)[sel['prior_idx']])


def test_per_class_nms_and_clipping():
    m, c = 4, 2
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.],
                           [1., 1., 11., 11.], [50., 50., 80., 80.]])
    logits = torch.full((1, m, c), -10.)
    logits[0, 0, 0] = _logit(0.9)   # kept
    logits[0, 1, 0] = _logit(0.8)   # same box, same class -> suppressed
    logits[0, 2, 1] = _logit(0.7)   # overlapping, other class -> kept
    logits[0, 3, 0] = _logit(0.6)   # clipped to the 60 x 70 (h, w) image
    sel = select_topk_suspicious(logits, torch.zeros(1, m, 4), priors, CODER,
                                 torch.tensor([[60, 70]]), topk=10)
    assert sel['prior_idx'].tolist() == [0, 2, 3]
    assert sel['rois'][2].tolist() == [0., 50., 50., 70., 60.]


def test_no_box_anywhere():
    sel = select_topk_suspicious(
        torch.full((2, 5, 3), -10.), torch.zeros(2, 5, 4), _priors(5), CODER,
        torch.tensor([[50, 200]] * 2), topk=10)
    assert sel['rois'].shape == (0, 5)
    assert sel['labels'].numel() == 0


def test_flatten_follows_prior_order():
    b, a, c = 2, 3, 4
    cls = [torch.randn(b, a * c, 2, 3), torch.randn(b, a * c, 1, 2)]
    reg = [torch.randn(b, a * 4, 2, 3), torch.randn(b, a * 4, 1, 2)]
    logits, deltas = flatten_dense_outputs(cls, reg, c)
    assert logits.shape == (b, 2 * 3 * a + 1 * 2 * a, c)
    # level 0, location (y=1, x=2), anchor 1, class 3
    assert logits[1, (1 * 3 + 2) * a + 1, 3] == cls[0][1, 1 * c + 3, 1, 2]
    # level 1 starts after the 18 priors of level 0
    assert deltas[0, 18 + (0 * 2 + 1) * a + 2, 0] == reg[1][0, 2 * 4, 0, 1]
