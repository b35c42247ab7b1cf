"""Weighted k-NN probing of frozen features (DINO's ``eval_knn`` protocol).

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers"
(ICCV 2021), Sec. 4.1 / ``eval_knn.py``: features are L2-normalised, the ``k``
training samples with the largest cosine similarity vote for their class with
weight ``exp(sim / T)`` (``T = 0.07``), the class with the largest summed vote
wins. Stegmüller et al. (ISBI 2023) report the weighted F1 of this classifier
as mean and standard deviation over 4 random 75/25 splits of a labeled
cell-crop set (Sec. 3.1); :func:`knn_evaluate` implements that protocol,
:func:`knn_transfer_sensitivity` their transfer protocol (Table 3), and
:class:`KNNMetric` runs it inside a validation loop, so a DINO run logs
``knn/weighted_f1_k20`` (a collapse shows as a drop to chance level)::

    val_evaluator = dict(type='KNNMetric', topk=(10, 20), num_splits=4,
                         positive_classes=['ASC-US', 'ASC-H', 'LSIL',
                                           'HSIL', 'SCC'])

Conventions: accuracies and F1 scores are percentages; F1 of a class is
``2 TP / (2 TP + FP + FN)`` and 0 when that is ``0 / 0`` (as
``sklearn.metrics.f1_score(zero_division=0)``); the weighted F1 averages the
class F1 weighted by the class's test support; standard deviations are
population std (``ddof=0``) over the splits.

One module (over 500 lines): DINO's weighted vote, the stratified splits,
the F1 summaries and the transfer protocol form one protocol that the
metric, ``cervdet.evaluation.knn`` and the benchmarks call together.
"""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS
from torch import Tensor

from .roi_classification_metric import confusion_matrix, per_class_prf

ArrayLike = Union[Tensor, np.ndarray, Sequence[int]]


# ----------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------
def weighted_knn_predict(train_feats: Tensor,
                         train_labels: Tensor,
                         test_feats: Tensor,
                         k: int = 20,
                         T: float = 0.07,
                         num_classes: Optional[int] = None,
                         chunk_size: int = 1024,
                         normalize: bool = True) -> Tuple[Tensor, Tensor]:
    """Weighted k-NN classification with cosine similarity (DINO eval_knn).

    Args:
        train_feats (Tensor[N, C]): Features of the labeled (train) samples.
        train_labels (Tensor[N]): int class index of each train sample.
        test_feats (Tensor[M, C]): Features to classify.
        k (int): Number of neighbours. Clamped (with a warning) to ``N``.
        T (float): Temperature of the vote weights ``exp(sim / T)``.
        num_classes (int, optional): Number of classes; defaults to
            ``train_labels.max() + 1``.
        chunk_size (int): Test samples per similarity block (memory is
            ``chunk_size x N`` floats).
        normalize (bool): L2-normalise both feature sets first (set False
            only for already normalised features).

    Returns:
        tuple[Tensor[M], Tensor[M, num_classes]]: Predicted class per test
        sample and the summed vote of each class. Ties go to the lowest
        class index.
    """
    train_feats = torch.as_tensor(train_feats).float()
    test_feats = torch.as_tensor(test_feats).float()
    train_labels = torch.as_tensor(train_labels).long().reshape(-1)
    if train_feats.dim() != 2 or test_feats.dim() != 2:
        raise ValueError('weighted_knn_predict needs 2-D features [N, C] and '
                         f'[M, C], got {tuple(train_feats.shape)} and '
                         f'{tuple(test_feats.shape)}')
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(f'train features have {train_feats.shape[1]} '
                         f'channels, test features {test_feats.shape[1]}')
    n = train_feats.shape[0]
    if n == 0:
        raise ValueError('weighted_knn_predict needs at least one train sample')
    if train_labels.numel() != n:
        raise ValueError(f'{train_labels.numel()} train labels for {n} '
                         'train features')
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1
    if int(train_labels.max()) >= num_classes or int(train_labels.min()) < 0:
        raise ValueError(f'train labels must be in [0, {num_classes}), got '
                         f'[{int(train_labels.min())}, '
                         f'{int(train_labels.max())}]')
    if k > n:
        warnings.warn(f'k-NN: k={k} is larger than the {n} train samples; '
                      f'using k={n}')
        k = n
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if normalize:
        train_feats = F.normalize(train_feats, dim=1)
        test_feats = F.normalize(test_feats, dim=1)
    scores = test_feats.new_zeros(test_feats.shape[0], num_classes)
    for start in range(0, test_feats.shape[0], chunk_size):
        sim = test_feats[start:start + chunk_size] @ train_feats.T  # [m, N]
        top_sim, top_idx = sim.topk(k, dim=1)  # [m, k]
        # DINO eval_knn: vote weight exp(cos / T), summed per class
        weights = (top_sim / T).exp()
        votes = train_labels[top_idx]  # [m, k]
        scores[start:start + chunk_size].scatter_add_(1, votes, weights)
    return scores.argmax(dim=1), scores


def stratified_splits(labels: ArrayLike,
                      train_frac: float = 0.75,
                      num_splits: int = 4,
                      seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Repeated random stratified train/test splits.

    Every class with ``n >= 2`` samples puts ``round(train_frac * n)``
    samples (clipped to ``[1, n - 1]``) into train and the rest into test.
    A class with a single sample puts it into **train** (it can be voted
    for but is never tested) and a warning is issued.

    Args:
        labels (array-like[N]): int class of each sample.
        train_frac (float): Share of each class in train, in (0, 1).
        num_splits (int): Number of independent splits.
        seed (int): Seed; split ``s`` uses ``default_rng([seed, s])``.

    Returns:
        list[tuple[np.ndarray, np.ndarray]]: ``num_splits`` pairs of sorted,
        disjoint int64 index arrays ``(train_idx, test_idx)`` covering all
        samples.
    """
    labels = np.asarray(torch.as_tensor(labels).reshape(-1).cpu().numpy())
    if not 0. < train_frac < 1.:
        raise ValueError(f'train_frac must be in (0, 1), got {train_frac}')
    if num_splits < 1:
        raise ValueError(f'num_splits must be >= 1, got {num_splits}')
    classes, counts = np.unique(labels, return_counts=True)
    single = classes[counts == 1]
    if single.size:
        warnings.warn(f'k-NN splits: class(es) {single.tolist()} have a single '
                      'sample; it is kept in train only (never tested)')
    members = [np.flatnonzero(labels == c) for c in classes]
    n_train = [n if n == 1 else int(np.clip(round(train_frac * n), 1, n - 1))
               for n in counts]
    splits = []
    for s in range(num_splits):
        rng = np.random.default_rng([seed, s])
        train, test = [], []
        for idx, n_tr in zip(members, n_train):
            perm = rng.permutation(idx)
            train.append(perm[:n_tr])
            test.append(perm[n_tr:])
        splits.append((np.sort(np.concatenate(train)).astype(np.int64),
                       np.sort(np.concatenate(test)).astype(np.int64)))
    return splits


def f1_scores(pred: ArrayLike, target: ArrayLike,
              num_classes: int) -> Dict[str, np.ndarray]:
    """Accuracy, class-wise F1 and support-weighted F1 (fractions in [0, 1]).

    Args:
        pred (array-like[M]): Predicted class indices.
        target (array-like[M]): True class indices.
        num_classes (int): Number of classes ``K``.

    Returns:
        dict: ``accuracy`` (float), ``f1`` (np.ndarray[K]), ``support``
        (np.ndarray[K]) and ``weighted_f1`` (float, ``sum(f1 * support) /
        sum(support)``).
    """
    pred = torch.as_tensor(pred).reshape(-1).long().cpu().numpy()
    target = torch.as_tensor(target).reshape(-1).long().cpu().numpy()
    if pred.size != target.size:
        raise ValueError(f'{pred.size} predictions for {target.size} targets')
    if pred.size == 0:
        raise ValueError('f1_scores needs at least one test sample')
    cm = confusion_matrix(target, pred, num_classes)  # [true, pred]
    # F1 of a class neither present nor predicted: 0 (sklearn's
    # zero_division=0), not the ROI metric's nan
    f1 = np.nan_to_num(per_class_prf(cm)['f1'], nan=0.)
    support = cm.sum(1).astype(np.float64)
    return dict(accuracy=float(np.trace(cm) / pred.size), f1=f1,
                support=support,
                weighted_f1=float((f1 * support).sum() / support.sum()))


def _summarise(per_split: List[Dict], num_classes: int) -> Dict:
    """Mean/std (in %) over splits of the outputs of :func:`f1_scores`."""
    acc = 100. * np.array([r['accuracy'] for r in per_split])
    wf1 = 100. * np.array([r['weighted_f1'] for r in per_split])
    f1 = 100. * np.stack([r['f1'] for r in per_split])  # [S, K]
    return dict(accuracy=float(acc.mean()), accuracy_std=float(acc.std()),
                weighted_f1=float(wf1.mean()),
                weighted_f1_std=float(wf1.std()),
                f1=f1.mean(0).tolist(), f1_std=f1.std(0).tolist(),
                per_split_weighted_f1=wf1.tolist())


def _per_run(feats: Union[Tensor, Sequence[Tensor]], num_splits: int,
             name: str) -> List[Tensor]:
    """Normalised features of every split: one tensor shared, or one each."""
    if isinstance(feats, (list, tuple)):
        if len(feats) != num_splits:
            raise ValueError(f'{name}: {len(feats)} feature sets (runs) for '
                             f'{num_splits} splits; give one per split')
        return [F.normalize(torch.as_tensor(f).float(), dim=1) for f in feats]
    f = F.normalize(torch.as_tensor(feats).float(), dim=1)
    return [f] * num_splits


def knn_evaluate(feats: Union[Tensor, Sequence[Tensor]],
                 labels: ArrayLike,
                 topk: Sequence[int] = (10, 20),
                 T: float = 0.07,
                 num_splits: int = 4,
                 train_frac: float = 0.75,
                 seed: int = 0,
                 num_classes: Optional[int] = None,
                 test_feats: Optional[Union[Tensor, Sequence[Tensor]]] = None,
                 test_labels: Optional[ArrayLike] = None) -> Dict[int, Dict]:
    """Weighted k-NN over repeated stratified splits, for each ``k``.

    Stegmueller et al. (ISBI 2023) Sec. 3.1: "randomly split in
    train/validation with a 75/25 partition ... mean and standard deviation
    ... over 4 independent runs"; each of their runs also has its own DINO
    model (one per stratified slide split). Give ``feats`` as a list of one
    feature tensor per split for that (run ``s`` = split ``s`` with the
    features of model ``s``); one tensor varies the split only.

    Within-set (``test_feats is None``): split ``(feats, labels)`` with
    :func:`stratified_splits`, fit on the train part, test on the rest.
    Transfer (``test_feats`` given): the splits of both sets are drawn with
    the same seed; split ``s`` fits on the train part of set A
    (``feats``) and tests on the test part of set B (``test_feats``), so the
    transfer numbers are measured on the very samples the within-set
    protocol of B tests on. Both sets must use the same label space (e.g.
    binary positive/negative).

    Args:
        feats (Tensor[N, C] | list[Tensor[N, C]]): Features (normalised
            here), or one set per split (``num_splits`` of them).
        labels (array-like[N]): int labels in ``[0, num_classes)``.
        topk (Sequence[int]): Values of ``k`` to evaluate.
        T (float): Vote temperature.
        num_splits (int): Number of splits.
        train_frac (float): Train share of each class.
        seed (int): Split seed.
        num_classes (int, optional): Defaults to the largest label + 1.
        test_feats (Tensor[M, C] | list, optional): Features of set B
            (transfer), one set per split like ``feats``.
        test_labels (array-like[M], optional): Labels of set B.

    Returns:
        dict[int, dict]: For each ``k``: ``accuracy``, ``accuracy_std``,
        ``weighted_f1``, ``weighted_f1_std`` (%), class-wise ``f1`` and
        ``f1_std`` (lists of K values, %), ``per_split_weighted_f1``.
    """
    run_feats = _per_run(feats, num_splits, 'feats')
    labels_t = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if labels_t.numel() != run_feats[0].shape[0]:
        raise ValueError(f'{labels_t.numel()} labels for '
                         f'{run_feats[0].shape[0]} features')
    transfer = test_feats is not None
    if transfer:
        if test_labels is None:
            raise ValueError('transfer k-NN needs test_labels with test_feats')
        run_t_feats = _per_run(test_feats, num_splits, 'test_feats')
        t_labels = torch.as_tensor(np.asarray(test_labels)).long().reshape(-1)
    else:
        run_t_feats, t_labels = run_feats, labels_t
    if num_classes is None:
        num_classes = int(max(labels_t.max(), t_labels.max())) + 1
    splits_a = stratified_splits(labels_t, train_frac, num_splits, seed)
    splits_b = (stratified_splits(t_labels, train_frac, num_splits, seed)
                if transfer else splits_a)
    per_k: Dict[int, List[Dict]] = {int(k): [] for k in topk}
    for s, ((train_idx, _), (_, test_idx)) in enumerate(
            zip(splits_a, splits_b)):
        if test_idx.size == 0:
            raise ValueError('a k-NN split has no test sample: every class '
                             'has a single sample; label more data')
        feats, t_feats = run_feats[s], run_t_feats[s]
        tr_f, tr_l = feats[train_idx], labels_t[train_idx]
        te_f, te_l = t_feats[test_idx], t_labels[test_idx]
        for k in per_k:
            pred, _ = weighted_knn_predict(tr_f, tr_l, te_f, k, T, num_classes,
                                           normalize=False)
            per_k[k].append(f1_scores(pred, te_l, num_classes))
    return {k: _summarise(v, num_classes) for k, v in per_k.items()}


def knn_transfer_sensitivity(src_feats: Union[Tensor, Sequence[Tensor]],
                             src_labels: ArrayLike,
                             tgt_feats: Union[Tensor, Sequence[Tensor]],
                             tgt_labels: ArrayLike,
                             topk: Sequence[int] = (10, 20),
                             T: float = 0.07) -> Dict[int, Dict]:
    """Transfer protocol of Table 3 (Stegmueller et al., ISBI 2023).

    "A k-NN classifier is fitted on the binary version of Herlev (H) and/or
    Sipakmed (S) ... and evaluated on the in-house set of positive
    cells/tiles; hence the sensitivity is reported. The whole source and
    target datasets are used; hence the randomness in the results is due to
    the multiplicity of the DINO pre-trained models." So: no split; the
    k-NN is fitted on *every* source sample (H+S: the sets concatenated by
    the caller) with binary labels (1 = positive) and every target positive
    is classified; sensitivity = share predicted positive. Mean +- std is
    over runs (one feature pair per pre-trained model). Target negatives,
    which the paper's target set does not have, give the specificity
    (reported apart, not part of the paper's number). Every ``k`` is
    returned; which one to report is the caller's choice: on a
    positives-only target the weighted F1 is ``2 s / (1 + s)`` of the
    sensitivity ``s``, so "the k that maximizes the weighted F1" taken on the
    target is the k of the largest sensitivity, which a large k wins by
    voting the source's majority class; ``tools/ssl/knn_eval.py`` takes it
    from the source's own binary k-NN instead.

    Args:
        src_feats (Tensor[N, C] | list): Source features, or one per run.
        src_labels (array-like[N]): Binary source labels (0/1).
        tgt_feats (Tensor[M, C] | list): Target features, one per run like
            ``src_feats``.
        tgt_labels (array-like[M]): Binary target labels; needs >= 1
            positive.
        topk (Sequence[int]): Values of ``k``.
        T (float): Vote temperature.

    Returns:
        dict[int, dict]: For each ``k``: ``sensitivity``,
        ``sensitivity_std`` (%), ``per_run_sensitivity``, ``num_positives``
        and, with target negatives, ``specificity`` / ``specificity_std``.
    """
    runs = len(src_feats) if isinstance(src_feats, (list, tuple)) else 1
    src = _per_run(src_feats, runs, 'src_feats')
    tgt = _per_run(tgt_feats, runs, 'tgt_feats')
    y_src = torch.as_tensor(np.asarray(src_labels)).long().reshape(-1)
    y_tgt = torch.as_tensor(np.asarray(tgt_labels)).long().reshape(-1)
    for y, f, n in ((y_src, src[0], 'source'), (y_tgt, tgt[0], 'target')):
        if y.numel() != f.shape[0]:
            raise ValueError(f'{y.numel()} {n} labels for {f.shape[0]} '
                             f'{n} features')
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(f'{n} labels must be binary 0/1 (1 = positive)')
    pos = y_tgt == 1
    if not bool(pos.any()):
        raise ValueError('the target set has no positive sample: the '
                         'sensitivity is undefined')
    out = {}
    for k in topk:
        sens, spec = [], []
        for fs, ft in zip(src, tgt):
            pred, _ = weighted_knn_predict(fs, y_src, ft, int(k), T, 2,
                                           normalize=False)
            sens.append(100. * float((pred[pos] == 1).float().mean()))
            if bool((~pos).any()):
                spec.append(100. * float((pred[~pos] == 0).float().mean()))
        r = dict(sensitivity=float(np.mean(sens)),
                 sensitivity_std=float(np.std(sens)),
                 per_run_sensitivity=sens, num_positives=int(pos.sum()))
        if spec:
            r.update(specificity=float(np.mean(spec)),
                     specificity_std=float(np.std(spec)))
        out[int(k)] = r
    return out


def best_k(results: Dict[int, Dict]) -> int:
    """The ``k`` with the largest mean weighted F1 (smallest ``k`` on ties)."""
    return max(sorted(results), key=lambda k: (results[k]['weighted_f1'], -k))


def binary_labels(labels: ArrayLike, class_names: Sequence[str],
                  positive_classes: Sequence[Union[str, int]]) -> np.ndarray:
    """Map multi-class labels to negative (0) / positive (1).

    Args:
        labels (array-like[N]): Class indices into ``class_names``.
        class_names (Sequence[str]): Name of each class index.
        positive_classes (Sequence[str | int]): Names (or indices) of the
            positive classes.

    Returns:
        np.ndarray[N]: int64, 1 for samples of a positive class.
    """
    names = list(class_names)
    pos_idx = []
    for c in positive_classes:
        if isinstance(c, (int, np.integer)):
            if not 0 <= int(c) < len(names):
                raise ValueError(f'positive class index {c} is out of range '
                                 f'for {len(names)} classes')
            pos_idx.append(int(c))
        elif c in names:
            pos_idx.append(names.index(c))
        else:
            raise ValueError(f'positive class {c!r} is not one of the '
                             f'classes {names}; fix positive_classes')
    is_pos = np.zeros(len(names), dtype=np.int64)
    is_pos[pos_idx] = 1
    return is_pos[np.asarray(torch.as_tensor(labels).reshape(-1).numpy())]


# ----------------------------------------------------------------------------
# Metric
# ----------------------------------------------------------------------------
@METRICS.register_module()
class KNNMetric(BaseMetric):
    """Weighted k-NN accuracy / F1 of the features a model predicts.

    Reads ``feat`` (Tensor[C], pooled backbone features, any scale) and
    ``gt_label`` of every data sample (e.g. ``DINOPretrain`` in predict
    mode over a folder-per-class crop set), then runs :func:`knn_evaluate`
    on all gathered samples.

    Reported keys (prefix ``knn``; ``K`` each value of ``topk``):
    ``acc_kK``, ``acc_kK_std``, ``weighted_f1_kK``, ``weighted_f1_kK_std``,
    ``f1_<class>_kK`` (class-wise), ``best_k`` (largest mean weighted F1),
    ``weighted_f1`` and ``acc`` (at ``best_k``, e.g. for ``save_best``) and,
    with ``positive_classes``, ``binary_acc_kK``, ``binary_weighted_f1_kK``
    (+ ``_std``) of a k-NN fitted on the positive/negative labels.

    Args:
        topk (Sequence[int]): Values of ``k``. Defaults to (10, 20).
        temperature (float): Vote temperature ``T``. Defaults to 0.07.
        num_splits (int): Number of random stratified splits. Defaults to 4
            (the paper's "4 independent runs", Sec. 3.1).
        train_frac (float): Train share per class. Defaults to 0.75.
        seed (int): Split seed. Defaults to 0.
        positive_classes (Sequence[str | int], optional): Classes counted
            positive in the binary report (names need ``classes`` in the
            dataset meta).
        class_names (Sequence[str], optional): Overrides the dataset meta's
            ``classes``.
        collect_device (str): Device to gather results on.
        prefix (str, optional): Defaults to ``'knn'``.
    """
    default_prefix: Optional[str] = 'knn'

    def __init__(self,
                 topk: Sequence[int] = (10, 20),
                 temperature: float = 0.07,
                 num_splits: int = 4,
                 train_frac: float = 0.75,
                 seed: int = 0,
                 positive_classes: Optional[Sequence[Union[str, int]]] = None,
                 class_names: Optional[Sequence[str]] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(topk, int):
            topk = (topk, )
        if not topk or min(topk) < 1:
            raise ValueError(f'KNNMetric topk needs k >= 1, got {topk}')
        self.topk = tuple(int(k) for k in topk)
        self.temperature = float(temperature)
        self.num_splits = int(num_splits)
        self.train_frac = float(train_frac)
        self.seed = int(seed)
        self.positive_classes = (None if positive_classes is None else
                                 list(positive_classes))
        self.class_names = None if class_names is None else list(class_names)

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Store ``(feat Tensor[C] on CPU, label int)`` of every sample."""
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            if 'feat' not in sample:
                raise KeyError(
                    'KNNMetric needs a "feat" field (Tensor[C]) in the '
                    'predictions; use a model whose predict mode sets it '
                    '(e.g. DINOPretrain) or set_field(feat, "feat")')
            if 'gt_label' not in sample:
                raise KeyError('KNNMetric needs gt_label in the data samples: '
                               'validate on a labeled (folder-per-class) set')
            feat = torch.as_tensor(sample['feat']).detach().float().reshape(-1)
            label = int(torch.as_tensor(sample['gt_label']).reshape(-1)[0])
            self.results.append((feat.cpu(), label))

    def _names(self, num_classes: int) -> List[str]:
        if self.class_names is not None:
            names = self.class_names
        elif self.dataset_meta and self.dataset_meta.get('classes'):
            names = list(self.dataset_meta['classes'])
        else:
            names = [f'class_{i}' for i in range(num_classes)]
        if len(names) < num_classes:
            raise ValueError(f'KNNMetric: labels go up to {num_classes - 1} '
                             f'but only {len(names)} class names are known')
        return list(names)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Run the k-NN protocol on all stored features."""
        if len(results) < 2:
            raise ValueError(f'KNNMetric needs >= 2 labeled samples, got '
                             f'{len(results)}: check the val dataloader')
        feats = torch.stack([r[0] for r in results])
        labels = np.array([r[1] for r in results], dtype=np.int64)
        names = self._names(int(labels.max()) + 1)
        kw = dict(topk=self.topk, T=self.temperature,
                  num_splits=self.num_splits, train_frac=self.train_frac,
                  seed=self.seed)
        res = knn_evaluate(feats, labels, num_classes=len(names), **kw)
        out: Dict[str, float] = {}
        for k, r in res.items():
            out[f'acc_k{k}'] = r['accuracy']
            out[f'acc_k{k}_std'] = r['accuracy_std']
            out[f'weighted_f1_k{k}'] = r['weighted_f1']
            out[f'weighted_f1_k{k}_std'] = r['weighted_f1_std']
            for name, f1 in zip(names, r['f1']):
                out[f'f1_{name}_k{k}'] = f1
        kb = best_k(res)
        out['best_k'] = kb
        out['weighted_f1'] = res[kb]['weighted_f1']
        out['acc'] = res[kb]['accuracy']
        if self.positive_classes is not None:
            bin_labels = binary_labels(labels, names, self.positive_classes)
            bres = knn_evaluate(feats, bin_labels, num_classes=2, **kw)
            for k, r in bres.items():
                out[f'binary_acc_k{k}'] = r['accuracy']
                out[f'binary_weighted_f1_k{k}'] = r['weighted_f1']
                out[f'binary_weighted_f1_k{k}_std'] = r['weighted_f1_std']
        return out


__all__ = ['KNNMetric', 'weighted_knn_predict', 'stratified_splits',
           'f1_scores', 'knn_evaluate', 'knn_transfer_sensitivity', 'best_k',
           'binary_labels']
