"""Slide-level screening metrics (whole-slide screening).

Pure functions (fractions in [0, 1]; ``y`` bool/int [N], 1 = positive slide,
``s`` float [N] slide scores, higher = more suspicious):

* :func:`slide_auc`: ROC-AUC (ties count 1/2);
* :func:`sensitivity_at_specificity`: the best sensitivity of a threshold
  whose specificity on negatives reaches ``spec`` (a slide is called
  positive when ``s >= t``);
* :func:`triage_share_at_full_sensitivity`: share of all slides scored
  strictly below the lowest-scoring positive (what a triage that misses no
  positive removes from manual review);
* :func:`topk_hit_rate`: share of positive slides with at least one true
  abnormal cell among their ``k`` top-scoring cells.

:class:`SlideScreeningMetric` (mmpretrain METRICS) reads ``slide_score`` and
``is_positive`` (else ``gt_label != negative_index``) of every prediction of
:class:`~cervdet.models.classifiers.SlideMILClassifier` and reports, in %,
``slide/auc``, ``slide/sens_at_spec<NN>``, ``slide/triage_share`` (plus
``slide/top<k>_hit_rate`` when the predictions carry ``cell_hits``), and the
counts ``slide/num_positive`` / ``slide/num_negative``::

    val_evaluator = dict(type='SlideScreeningMetric', specificity=0.9)
"""
import math
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from cervdet.datasets.classes import BETHESDA_SEVERITY_ORDER

from .roc_auc import binary_roc_auc


def _ys(y, s) -> Tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).reshape(-1).astype(bool)
    s = np.asarray(s, np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f'{y.size} labels for {s.size} scores')
    if not np.isfinite(s).all():
        raise ValueError('slide scores must be finite')
    return y, s


def slide_auc(y, s) -> float:
    """Slide ROC-AUC (Mann-Whitney; tied positive/negative pairs count 1/2).

    Returns:
        float: AUC in [0, 1]; nan when one class is absent.
    """
    y, s = _ys(y, s)
    return binary_roc_auc(s, y)


def sensitivity_at_specificity(y, s, spec: float = 0.9,
                               return_threshold: bool = False
                               ) -> Union[float, Tuple[float, float]]:
    """Sensitivity at the operating point meeting a specificity.

    Slides with ``s >= t`` are called positive. Among the thresholds whose
    specificity (share of negatives with ``s < t``) is ``>= spec``, the
    lowest one gives the highest sensitivity; it is returned. Candidate
    thresholds are the observed scores and ``+inf`` (nothing called
    positive). Ties: all slides of a tied score fall on the same side, so a
    negative tied with a positive can only be excluded together with it
    (no interpolation between tied slides).

    Args:
        y (array[N]): 1 / True for positive slides.
        s (array[N]): Slide scores.
        spec (float): Target specificity in [0, 1].
        return_threshold (bool): Also return the threshold ``t``.

    Returns:
        float (and the threshold): sensitivity in [0, 1]; nan when one class
        is absent (threshold nan too).
    """
    if not 0. <= spec <= 1.:
        raise ValueError(f'spec must be in [0, 1]; got {spec}')
    y, s = _ys(y, s)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return (math.nan, math.nan) if return_threshold else math.nan
    cands = np.append(np.unique(s), np.inf)
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    # specificity(t) = #(neg < t) / n_neg, non-decreasing in t
    spec_t = np.searchsorted(neg_sorted, cands, side='left') / len(neg)
    ok = spec_t >= spec - 1e-12
    t = cands[np.argmax(ok)]  # lowest threshold meeting spec (inf always ok)
    sens = float((len(pos) - np.searchsorted(pos_sorted, t, side='left'))
                 / len(pos))
    return (sens, float(t)) if return_threshold else sens


def triage_share_at_full_sensitivity(y, s) -> float:
    """Share of all slides scored strictly below the lowest positive.

    Returns:
        float: In [0, 1]; nan without positive slides.
    """
    y, s = _ys(y, s)
    if not y.any():
        return math.nan
    return float((s < s[y].min()).mean())


def topk_hit_rate(cell_hits: Sequence[Iterable[bool]], k: int = 10) -> float:
    """Share of (positive) slides with a true abnormal cell in the top-k.

    Args:
        cell_hits (Sequence[array[n_i] of bool]): Per positive slide, whether
            each of its cells (sorted by decreasing score) is a true
            abnormal cell.
        k (int): Top cells looked at.

    Returns:
        float: In [0, 1]; nan for an empty list.
    """
    if k < 1:
        raise ValueError(f'k must be >= 1; got {k}')
    if not len(cell_hits):
        return math.nan
    hits = [bool(np.asarray(h, bool).reshape(-1)[:k].any())
            for h in cell_hits]
    return float(np.mean(hits))


def screening_summary(y, s, spec: float = 0.9) -> dict:
    """All score-based metrics (fractions) and counts."""
    y, s = _ys(y, s)
    sens, thr = sensitivity_at_specificity(y, s, spec, return_threshold=True)
    return dict(auc=slide_auc(y, s), sensitivity=sens, threshold=thr,
                triage_share=triage_share_at_full_sensitivity(y, s),
                num_positive=int(y.sum()), num_negative=int((~y).sum()))


#: Default ordered Bethesda grades of the slide call (NILM = negative):
#: :data:`cervdet.datasets.classes.BETHESDA_SEVERITY_ORDER`.
BETHESDA_SLIDE_GRADES = BETHESDA_SEVERITY_ORDER


def calibrate_grade_thresholds(scores, grades, grade_names: Sequence[str],
                               target_sensitivity: float = 1.0) -> dict:
    """Per-grade slide-score thresholds from validation slides.

    For every grade ``g`` above the negative one (``grade_names[0]``), the
    threshold is the highest ``t`` such that at least
    ``ceil(target_sensitivity * n_g)`` of the ``n_g`` slides of grade
    ``>= g`` have ``s >= t``; its specificity is the share of negative
    slides with ``s < t``.

    Args:
        scores (array[N]): Slide scores.
        grades (array[N]): int grade index of every slide in
            ``grade_names``.
        grade_names (Sequence[str]): Ordered grades, negative first.
        target_sensitivity (float): In (0, 1]. Defaults to 1.0.

    Returns:
        dict: ``{grade: dict(threshold, sensitivity, specificity_negative,
        num_slides)}`` for every grade but the first, in order; a grade
        without slides of grade ``>= g`` gets ``threshold=None``.
    """
    if not 0. < target_sensitivity <= 1.:
        raise ValueError(f'target_sensitivity must be in (0, 1]; got '
                         f'{target_sensitivity}')
    s = np.asarray(scores, np.float64).reshape(-1)
    g = np.asarray(grades, np.int64).reshape(-1)
    if s.shape != g.shape:
        raise ValueError(f'{g.size} grades for {s.size} scores')
    neg = s[g == 0]
    out = {}
    for gi in range(1, len(grade_names)):
        sel = np.sort(s[g >= gi])[::-1]  # decreasing
        entry = dict(threshold=None, sensitivity=None,
                     specificity_negative=None, num_slides=int(len(sel)))
        if len(sel):
            m = max(1, int(math.ceil(target_sensitivity * len(sel) - 1e-9)))
            t = float(sel[m - 1])
            entry.update(threshold=t,
                         sensitivity=float((sel >= t).mean()),
                         specificity_negative=(float((neg < t).mean())
                                               if len(neg) else None))
        out[str(grade_names[gi])] = entry
    return out


def call_grade(score: float, thresholds: dict) -> str:
    """The slide's grade: the highest grade whose threshold ``score``
    reaches (``>=``), the negative grade otherwise.

    Args:
        score (float): Slide score.
        thresholds (dict): A thresholds JSON of
            ``tools/slide/calibrate_thresholds.py`` (``grades`` +
            ``thresholds``), or an ordered mapping ``{grade: threshold}`` of
            the positive grades (lowest first; the negative grade is then
            ``'NILM'``: use the JSON form for other names). Grades with a
            ``None`` threshold are never called.

    Returns:
        str: The grade name.
    """
    if 'thresholds' in thresholds and 'grades' in thresholds:
        grades = list(thresholds['grades'])
        table = thresholds['thresholds']
    else:
        table = dict(thresholds)
        grades = ['NILM'] + [k for k in table if k != 'NILM']
    for grade in reversed(grades[1:]):
        t = table.get(grade)
        if isinstance(t, dict):
            t = t.get('threshold')
        if t is not None and float(score) >= float(t):
            return grade
    return grades[0]


@METRICS.register_module()
class SlideScreeningMetric(BaseMetric):
    """Slide AUC, sensitivity at a specificity, triage share at zero missed
    positives (and top-k hit rate with ``cell_hits``), in %.

    Undefined values (one class absent) are nan.

    Args:
        specificity (float): Specificity of ``sens_at_spec<NN>``.
            Defaults to 0.9.
        topk (int): ``k`` of the hit rate. Defaults to 10.
        negative_index (int): Negative grade when ``is_positive`` is
            missing. Defaults to 0.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to ``'slide'``.
    """
    default_prefix: Optional[str] = 'slide'

    def __init__(self, specificity: float = 0.9, topk: int = 10,
                 negative_index: int = 0, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0. < specificity <= 1.:
            raise ValueError(f'specificity must be in (0, 1]; got '
                             f'{specificity}')
        self.specificity = float(specificity)
        self.topk = int(topk)
        self.negative_index = int(negative_index)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store slide score, label and (optional) cell hits."""
        for sample in data_samples:
            if 'slide_score' not in sample:
                raise KeyError('SlideScreeningMetric needs slide_score in the '
                               'predictions (SlideMILClassifier.predict)')
            if 'is_positive' in sample:
                pos = bool(sample['is_positive'])
            elif 'gt_label' in sample:
                pos = int(torch.as_tensor(sample['gt_label']).reshape(-1)[0]
                          ) != self.negative_index
            else:
                raise KeyError(f'slide {sample.get("slide", "")} has no label'
                               ' (is_positive / gt_label)')
            res = dict(pos=pos, score=float(sample['slide_score']))
            if 'cell_hits' in sample:
                res['hits'] = np.asarray(torch.as_tensor(
                    sample['cell_hits']).cpu(), bool)
            self.results.append(res)

    def compute_metrics(self, results: List[dict]) -> dict:
        if not results:
            raise ValueError('SlideScreeningMetric: no predictions')
        y = np.array([r['pos'] for r in results])
        s = np.array([r['score'] for r in results])
        summ = screening_summary(y, s, self.specificity)
        tag = f'{round(self.specificity * 100):d}'
        metrics = dict(auc=100. * summ['auc'],
                       triage_share=100. * summ['triage_share'])
        metrics[f'sens_at_spec{tag}'] = 100. * summ['sensitivity']
        hits = [r['hits'] for r in results if r['pos'] and 'hits' in r]
        if hits:
            metrics[f'top{self.topk}_hit_rate'] = 100. * topk_hit_rate(
                hits, self.topk)
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics['num_positive'] = summ['num_positive']
        metrics['num_negative'] = summ['num_negative']
        return metrics


__all__ = ['SlideScreeningMetric', 'slide_auc', 'sensitivity_at_specificity',
           'triage_share_at_full_sensitivity', 'topk_hit_rate',
           'screening_summary', 'calibrate_grade_thresholds', 'call_grade',
           'BETHESDA_SLIDE_GRADES']
