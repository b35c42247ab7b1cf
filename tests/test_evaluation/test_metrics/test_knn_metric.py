"""Weighted k-NN probing (DINO eval_knn) and the KNNMetric."""
import math
import warnings

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample
from sklearn.metrics import f1_score

from cervdet.evaluation.metrics import (
    KNNMetric,
    best_k,
    binary_labels,
    f1_scores,
    knn_evaluate,
    knn_transfer_sensitivity,
    stratified_splits,
    weighted_knn_predict,
)


def _unit(deg):
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


# 4 train points on the unit circle; the query (1, 0) has one class-0
# neighbour at cos 1 and two class-1 neighbours at cos(40 deg).
TRAIN = torch.tensor([_unit(0), _unit(40), _unit(-40), _unit(180)])
TRAIN_LABELS = torch.tensor([0, 1, 1, 0])
QUERY = torch.tensor([[1., 0.]])


def test_vote_weights_hand_computed():
    c40 = math.cos(math.radians(40))
    # T = 1: class 0 gets e^1 = 2.718, class 1 gets 2 e^0.766 = 4.303
    pred, scores = weighted_knn_predict(TRAIN, TRAIN_LABELS, QUERY, k=3, T=1.)
    assert scores[0].tolist() == pytest.approx([math.e, 2 * math.exp(c40)],
                                               rel=1e-5)
    assert pred.tolist() == [1]
    # T = 0.07 (DINO): exp(1/T) beats 2 exp(0.766/T): the close neighbour wins
    pred, scores = weighted_knn_predict(TRAIN, TRAIN_LABELS, QUERY, k=3,
                                        T=0.07)
    assert pred.tolist() == [0]
    assert scores[0, 0].item() == pytest.approx(math.exp(1 / 0.07), rel=1e-4)
    assert scores[0, 1].item() == pytest.approx(2 * math.exp(c40 / 0.07),
                                                rel=1e-4)
    # k = 1: only the nearest neighbour votes; the far (-1, 0) point never
    # counts for k <= 3
    pred, scores = weighted_knn_predict(TRAIN, TRAIN_LABELS, QUERY, k=1, T=1.)
    assert scores[0].tolist() == pytest.approx([math.e, 0.])


def test_cosine_scale_invariance_chunks_and_num_classes():
    rng = torch.Generator().manual_seed(0)
    train = torch.randn(50, 8, generator=rng)
    labels = torch.randint(0, 3, (50, ), generator=rng)
    test = torch.randn(37, 8, generator=rng)
    p1, s1 = weighted_knn_predict(train, labels, test, k=7, num_classes=5)
    # scaled features, tiny chunks: identical result
    p2, s2 = weighted_knn_predict(train * 9., labels, test * 0.1, k=7,
                                  num_classes=5, chunk_size=4)
    assert s1.shape == (37, 5)
    assert torch.equal(p1, p2)
    assert torch.allclose(s1, s2, rtol=1e-4)
    assert (s1[:, 3:] == 0).all()  # classes absent from train get no vote
    # brute force reference for one query
    sim = torch.nn.functional.normalize(test[:1], dim=1) @ \
        torch.nn.functional.normalize(train, dim=1).T
    top = sim[0].argsort(descending=True)[:7]
    ref = torch.zeros(5)
    ref.index_add_(0, labels[top], (sim[0, top] / 0.07).exp())
    assert torch.allclose(s1[0], ref, rtol=1e-4)


def test_k_larger_than_train_is_clamped_with_warning():
    with pytest.warns(UserWarning, match='k=10 is larger than the 4'):
        pred, scores = weighted_knn_predict(TRAIN, TRAIN_LABELS, QUERY, k=10,
                                            T=1.)
    _, ref = weighted_knn_predict(TRAIN, TRAIN_LABELS, QUERY, k=4, T=1.)
    assert torch.allclose(scores, ref)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='channels'):
        weighted_knn_predict(TRAIN, TRAIN_LABELS, torch.zeros(1, 3), k=1)
    with pytest.raises(ValueError, match='train labels'):
        weighted_knn_predict(TRAIN, TRAIN_LABELS[:3], QUERY, k=1)


def test_stratified_splits_disjoint_stratified_and_single_sample_rule():
    labels = np.array([0] * 8 + [1] * 4 + [2] * 1 + [3] * 2)
    with pytest.warns(UserWarning, match=r'\[2\] have a single sample'):
        splits = stratified_splits(labels, 0.75, num_splits=4, seed=3)
    assert len(splits) == 4
    for train, test in splits:
        assert np.intersect1d(train, test).size == 0
        assert np.array_equal(np.union1d(train, test), np.arange(15))
        # 6 of 8, 3 of 4, the single sample in train, 1 of 2
        assert np.bincount(labels[train], minlength=4).tolist() == [6, 3, 1, 1]
        assert np.bincount(labels[test], minlength=4).tolist() == [2, 1, 0, 1]
    assert not all(np.array_equal(splits[0][0], s[0]) for s in splits[1:])
    with pytest.warns(UserWarning):
        again = stratified_splits(labels, 0.75, num_splits=4, seed=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(splits, again))


def test_f1_scores_hand_computed_and_against_sklearn():
    r = f1_scores([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], num_classes=4)
    assert r['f1'].tolist() == pytest.approx([2 / 3, 0.8, 1., 0.])
    assert r['weighted_f1'] == pytest.approx((2 / 3 + 3 * 0.8 + 1) / 5)
    assert r['accuracy'] == pytest.approx(0.8)
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    pred[pred == 4] = 3  # class 4 never predicted: F1 0
    r = f1_scores(pred, target, 5)
    assert r['weighted_f1'] == pytest.approx(
        f1_score(target, pred, average='weighted', zero_division=0))
    assert r['f1'] == pytest.approx(
        f1_score(target, pred, average=None, zero_division=0))


def _clusters(n_per_class, num_classes, noise, seed, dim=16):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:num_classes] * 3.
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centres[labels] + noise * torch.randn(len(labels), dim, generator=g)
    return feats, labels


def test_knn_evaluate_within_set_and_transfer():
    feats, labels = _clusters(12, 3, 0.1, 0)
    res = knn_evaluate(feats, labels, topk=(1, 5), num_splits=3)
    assert set(res) == {1, 5}
    for r in res.values():
        assert r['weighted_f1'] == pytest.approx(100.)
        assert r['weighted_f1_std'] == pytest.approx(0.)
        assert r['f1'] == pytest.approx([100.] * 3)
    # random features: chance level, non-zero spread across splits
    noise = torch.randn(120, 16, generator=torch.Generator().manual_seed(1))
    res = knn_evaluate(noise, torch.arange(120) % 3, topk=(5, ),
                       num_splits=5)
    assert 10. < res[5]['accuracy'] < 60.
    assert res[5]['weighted_f1_std'] > 0.
    # transfer: fit on set A, test on the test part of set B (same clusters)
    fa, la = _clusters(10, 2, 0.1, 2)
    fb, lb = _clusters(20, 2, 0.1, 3)
    res = knn_evaluate(fa, la, topk=(3, ), num_splits=2, test_feats=fb,
                       test_labels=lb)
    assert res[3]['accuracy'] == pytest.approx(100.)
    # swapped labels on B: everything wrong
    res = knn_evaluate(fa, la, topk=(3, ), num_splits=2, test_feats=fb,
                       test_labels=1 - lb)
    assert res[3]['accuracy'] == pytest.approx(0.)
    assert best_k({10: dict(weighted_f1=50.), 20: dict(weighted_f1=50.),
                   5: dict(weighted_f1=40.)}) == 10


def test_paper_default_is_four_runs():
    # Stegmueller et al. Sec. 3.1: mean +- std "over 4 independent runs"
    assert KNNMetric().num_splits == 4
    res = knn_evaluate(*_clusters(12, 2, 0.1, 0), topk=(1, ))
    assert len(res[1]['per_split_weighted_f1']) == 4


def test_runs_pair_each_split_with_its_own_model():
    good, labels = _clusters(12, 2, 0.1, 0)
    noise = torch.randn(good.shape, generator=torch.Generator().manual_seed(5))
    res = knn_evaluate([good, noise], labels, topk=(1, ), num_splits=2)
    per = res[1]['per_split_weighted_f1']
    assert per[0] == pytest.approx(100.)  # split 0 uses model 0 (good)
    only_noise = knn_evaluate(noise, labels, topk=(1, ), num_splits=2)
    assert per[1] == pytest.approx(only_noise[1]['per_split_weighted_f1'][1])
    with pytest.raises(ValueError, match='one per split'):
        knn_evaluate([good, noise], labels, topk=(1, ), num_splits=3)


def test_whole_set_transfer_sensitivity_hand_computed():
    # source: positives at 0 deg, negatives at 90 deg (labels 1 / 0)
    src = torch.tensor([_unit(0), _unit(5), _unit(90), _unit(85)])
    y_src = [1, 1, 0, 0]
    # target: positive at 10 deg (-> positive), positive at 80 deg
    # (-> negative), negative at 20 deg (-> positive)
    tgt = torch.tensor([_unit(10), _unit(80), _unit(20)])
    y_tgt = [1, 1, 0]
    res = knn_transfer_sensitivity(src, y_src, tgt, y_tgt, topk=(1, ))
    assert res[1]['sensitivity'] == pytest.approx(50.)  # 1 of 2 positives
    assert res[1]['specificity'] == pytest.approx(0.)  # 0 of 1 negative
    assert res[1]['num_positives'] == 2 and res[1]['sensitivity_std'] == 0.
    # two models: the second sees the 80-deg positive at 10 deg -> 100 %
    tgt2 = torch.tensor([_unit(10), _unit(10), _unit(20)])
    res = knn_transfer_sensitivity([src, src], y_src, [tgt, tgt2], y_tgt,
                                   topk=(1, ))
    assert res[1]['per_run_sensitivity'] == pytest.approx([50., 100.])
    assert res[1]['sensitivity'] == pytest.approx(75.)
    assert res[1]['sensitivity_std'] == pytest.approx(25.)  # population std
    # every source sample votes (no split): k = 4 sums all four votes
    w = lambda a, b: math.exp(math.cos(math.radians(a - b)) / 0.07)  # noqa
    pos_vote = w(80, 0) + w(80, 5)
    neg_vote = w(80, 90) + w(80, 85)
    res = knn_transfer_sensitivity(src, y_src, tgt[1:2], [1], topk=(4, ))
    assert neg_vote > pos_vote and res[4]['sensitivity'] == 0.
    assert 'specificity' not in res[4]
    with pytest.raises(ValueError, match='no positive'):
        knn_transfer_sensitivity(src, y_src, tgt[2:], [0])
    with pytest.raises(ValueError, match='binary'):
        knn_transfer_sensitivity(src, [0, 1, 2, 0], tgt, y_tgt)


def test_binary_labels():
    names = ['NILM', 'LSIL', 'HSIL']
    assert binary_labels([0, 1, 2, 0], names, ['LSIL', 'HSIL']).tolist() == \
        [0, 1, 1, 0]
    assert binary_labels([0, 1, 2], names, [2]).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match='not one of the classes'):
        binary_labels([0], names, ['ASC-US'])


@pytest.fixture
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def test_metric_on_data_samples(mmpretrain_scope):
    metric = METRICS.build(dict(type='KNNMetric', topk=(3, 50), num_splits=2,
                                positive_classes=['HSIL', 'LSIL']))
    assert isinstance(metric, KNNMetric)
    metric.dataset_meta = dict(classes=('NILM', 'LSIL', 'HSIL'))
    feats, labels = _clusters(8, 3, 0.05, 4)
    samples = []
    for f, l in zip(feats, labels):
        s = DataSample().set_gt_label(int(l))
        s.set_field(f, 'feat')
        samples.append(s.to_dict() if int(l) == 0 else s)  # both forms
    metric.process(None, samples[:10])
    metric.process(None, samples[10:])
    with pytest.warns(UserWarning, match='k=50'):
        out = metric.evaluate(len(samples))
    assert out['knn/acc_k3'] == pytest.approx(100.)
    assert out['knn/weighted_f1_k3'] == pytest.approx(100.)
    assert out['knn/weighted_f1_k3_std'] == pytest.approx(0.)
    assert out['knn/f1_HSIL_k3'] == pytest.approx(100.)
    assert out['knn/binary_weighted_f1_k3'] == pytest.approx(100.)
    # k = 50 > 18 train samples: clamped to all, so class votes are decided
    # by the summed exp(sim/T); the nearest class still dominates
    assert out['knn/best_k'] == 3
    assert out['knn/weighted_f1'] == out['knn/weighted_f1_k3']
    assert {'knn/acc_k50', 'knn/binary_acc_k50',
            'knn/binary_weighted_f1_k50_std'} <= set(out)


def test_metric_errors(mmpretrain_scope):
    metric = KNNMetric()
    with pytest.raises(KeyError, match='"feat" field'):
        metric.process(None, [dict(gt_label=torch.tensor([0]))])
    with pytest.raises(KeyError, match='gt_label'):
        metric.process(None, [dict(feat=torch.zeros(3))])
    with pytest.raises(ValueError, match='topk'):
        KNNMetric(topk=(0, ))
    metric = KNNMetric(topk=1, num_splits=1)
    metric.process(None, [dict(feat=torch.tensor([1., 0.]),
                               gt_label=torch.tensor([0]))] * 2 +
                   [dict(feat=torch.tensor([0., 1.]),
                         gt_label=torch.tensor([1]))] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        out = metric.evaluate(4)
    # no dataset meta: generic class names
    assert out['knn/f1_class_1_k1'] == pytest.approx(100.)


def test_metric_reads_dinopretrain_predictions(mmpretrain_scope):
    """Contract with DINOPretrain's predict mode (configs/ssl CPU model)."""
    from pathlib import Path

    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(
        Path(__file__).resolve().parents[3] / 'configs' / 'ssl' /
        'dino_resnet18-w32_sgd-10e_1xb32_cervical-tiles.py')
    model = MODELS.build(cfg.model).eval()
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, 3, 32, 32, generator=g)
    inputs[4:] += 2.  # two separable groups
    samples = [DataSample().set_gt_label(int(i >= 4)) for i in range(8)]
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    assert len(preds) == 8 and preds[0].feat.shape == (256, )
    metric = METRICS.build(dict(type='KNNMetric', topk=(1, ), num_splits=2))
    metric.dataset_meta = dict(classes=('neg', 'pos'))
    metric.process(None, preds)
    out = metric.evaluate(8)
    assert 0. <= out['knn/acc_k1'] <= 100. and out['knn/best_k'] == 1
    assert set(out) >= {'knn/f1_neg_k1', 'knn/f1_pos_k1',
                        'knn/weighted_f1_k1_std'}
