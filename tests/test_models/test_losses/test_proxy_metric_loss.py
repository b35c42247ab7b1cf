"""ProxyMetricLoss against values computed by hand (Chai et al., ISBI 2022,
proxy-based proposal alignment)."""
import math

import pytest
import torch
from mmdet.registry import MODELS

from cervdet.models.losses import (
    ProxyMetricLoss,
    euclidean_distance,
    proxy_nca_loss,
    select_pseudo_labels,
)

# 3 proxies in 2-D; class 2 has no proposal in the batch.
PROXIES = torch.tensor([[0., 0.], [3., 0.], [0., 4.]])
EMBEDS = torch.tensor([[0., 0.], [3., 4.]])
LABELS = torch.tensor([0, 1])
# distances to the proxies: a (class 0) 0, 3, 4; b (class 1) 5, 4, 3
LOSS_A = {'exclude_true': 0 + math.log(math.exp(-3) + math.exp(-4)),
          'all': 0 + math.log(1 + math.exp(-3) + math.exp(-4))}
LOSS_B = {'exclude_true': 4 + math.log(math.exp(-5) + math.exp(-3)),
          'all': 4 + math.log(math.exp(-5) + math.exp(-4) + math.exp(-3))}


def make_loss(denominator='exclude_true', **kwargs):
    loss = ProxyMetricLoss(3, 2, denominator=denominator, **kwargs)
    with torch.no_grad():
        loss.proxies.copy_(PROXIES)
    return loss


def test_euclidean_distance_zero_has_finite_gradient():
    a = torch.tensor([[0., 0.], [3., 4.]], requires_grad=True)
    d = euclidean_distance(a, torch.zeros(1, 2))
    assert torch.allclose(d, torch.tensor([[0.], [5.]]))
    d.sum().backward()
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize('denominator', ['exclude_true', 'all'])
def test_hand_computed_labeled(denominator):
    expected = (LOSS_A[denominator] + LOSS_B[denominator]) / 2
    value = proxy_nca_loss(EMBEDS, LABELS, PROXIES, denominator)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    losses = make_loss(denominator, loss_weight=2.)(EMBEDS, LABELS)
    assert losses['loss_pml'].item() == pytest.approx(2 * expected, rel=1e-6)
    assert losses['loss_pml_u'].item() == 0.0
    # weighted mean
    w = torch.tensor([1., 3.])
    value = proxy_nca_loss(EMBEDS, LABELS, PROXIES, denominator, weights=w)
    assert value.item() == pytest.approx(
        (LOSS_A[denominator] + 3 * LOSS_B[denominator]) / 4, rel=1e-6)


def test_exclude_true_can_be_negative_all_cannot():
    assert proxy_nca_loss(EMBEDS[:1], LABELS[:1], PROXIES).item() < 0
    assert proxy_nca_loss(EMBEDS[:1], LABELS[:1], PROXIES, 'all').item() > 0


@pytest.mark.parametrize('denominator', ['exclude_true', 'all'])
def test_hand_computed_unlabeled_threshold_and_background(denominator):
    embeds_u = torch.tensor([[0., 0.], [3., 4.], [0., 4.]])
    labels_u = torch.tensor([0, 1, 3])  # 3 = background: dropped
    weights_u = torch.tensor([0.9, 0.4, 0.99])  # 0.4 <= 0.5: dropped
    losses = make_loss(denominator)(EMBEDS, LABELS, embeds_u, labels_u,
                                    weights_u)
    assert losses['loss_pml_u'].item() == pytest.approx(
        LOSS_A[denominator], rel=1e-6)
    # background labels of labeled proposals are dropped as well
    losses = make_loss(denominator)(
        torch.cat([EMBEDS, torch.ones(1, 2)]), torch.tensor([0, 1, 3]))
    assert losses['loss_pml'].item() == pytest.approx(
        (LOSS_A[denominator] + LOSS_B[denominator]) / 2, rel=1e-6)


def test_select_pseudo_labels():
    scores = torch.tensor([[0.7, 0.2, 0.0, 0.1], [0.1, 0.3, 0.1, 0.5],
                           [0.05, 0.05, 0.6, 0.3]])
    labels, conf, keep = select_pseudo_labels(scores, 3, 0.5)
    assert labels.tolist() == [0, 1, 2]
    assert torch.allclose(conf, torch.tensor([0.7, 0.3, 0.6]))
    assert keep.tolist() == [True, False, True]


@pytest.mark.parametrize('denominator', ['exclude_true', 'all'])
def test_empty_inputs_give_attached_zero(denominator):
    loss = make_loss(denominator)
    embeds_l = torch.zeros(0, 2, requires_grad=True)
    embeds_u = torch.zeros(0, 2, requires_grad=True)
    losses = loss(embeds_l, torch.zeros(0, dtype=torch.long), embeds_u,
                  torch.zeros(0, dtype=torch.long), torch.zeros(0))
    for value in losses.values():
        assert value.item() == 0.0 and value.requires_grad
    (losses['loss_pml'] + losses['loss_pml_u']).backward()
    assert torch.isfinite(loss.proxies.grad).all()
    # all unlabeled proposals below the threshold
    embeds_u = torch.randn(4, 2, requires_grad=True)
    losses = loss(EMBEDS, LABELS, embeds_u, torch.zeros(4, dtype=torch.long),
                  torch.full((4, ), 0.1))
    assert losses['loss_pml_u'].item() == 0.0
    losses['loss_pml_u'].backward()
    assert (embeds_u.grad == 0).all()
    # zero total weight in the pure function
    value = proxy_nca_loss(EMBEDS, LABELS, PROXIES, denominator,
                           weights=torch.zeros(2))
    assert value.item() == 0.0


def test_gradients_proxies_from_labeled_only():
    loss = make_loss()
    embeds_u = EMBEDS.clone().requires_grad_()
    losses = loss(EMBEDS, LABELS, embeds_u, LABELS, torch.ones(2))
    losses['loss_pml_u'].backward()
    assert loss.proxies.grad is None or (loss.proxies.grad == 0).all()
    assert embeds_u.grad is not None and embeds_u.grad.abs().sum() > 0

    loss = make_loss()
    embeds_l = EMBEDS.clone().requires_grad_()
    loss(embeds_l, LABELS)['loss_pml'].backward()
    assert loss.proxies.grad is not None and loss.proxies.grad.abs().sum() > 0
    assert embeds_l.grad.abs().sum() > 0
    # class 2 is absent from the batch but is a negative: it gets gradient
    assert loss.proxies.grad[2].abs().sum() > 0


def test_invalid_inputs_are_reported():
    with pytest.raises(ValueError, match='foreground class indices'):
        proxy_nca_loss(EMBEDS, torch.tensor([0, 3]), PROXIES)
    with pytest.raises(ValueError, match='denominator'):
        ProxyMetricLoss(3, 2, denominator='other')
    with pytest.raises(ValueError, match='at least 2'):
        ProxyMetricLoss(1, 2)
    ProxyMetricLoss(1, 2, denominator='all')


def test_registered_in_mmdet():
    loss = MODELS.build(dict(type='ProxyMetricLoss', num_classes=5,
                             embed_dim=128, denominator='all'))
    assert isinstance(loss, ProxyMetricLoss)
    assert loss.proxies.shape == (5, 128) and loss.proxies.requires_grad
