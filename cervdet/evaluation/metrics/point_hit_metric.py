"""Point-based detection metric for point-annotated fields (CRIC Cervix).

CRIC Cervix marks one pixel per classified cell (its nucleus centre), not a
box, and does not mark every cell of a field. Boxes made from those points
have an arbitrary size, so COCO AP at IoU 0.5 partly measures how well the
detector guesses that arbitrary size. This metric asks instead whether a
detection *finds a marked cell*: a detection hits a point when the point lies
inside its box (``match='inside'``) or within ``radius_um`` micrometres of
the box centre (``match='radius'``). Registered in mmdet's METRICS, it runs
beside :class:`~mmdet.evaluation.metrics.CocoMetric`::

    val_evaluator = [
        dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json',
             metric='bbox'),
        dict(type='PointHitMetric',
             ann_file=data_root + 'annotations/val.json', score_thr=0.5)]

Matching is one-to-one (each point is hit at most once, each detection
counts once), greedy by score (:func:`greedy_point_matching`), done per image
in ``process`` for two views at once:

- class-aware: a detection of class ``c`` may only hit points of class ``c``
  (per-class recall / precision / F1 / AP);
- group-aware: a detection of any abnormal class may hit any abnormal point
  (``abnormal/...``: the screening question, "is this abnormal cell found",
  whatever its grade), likewise for normal classes (``normal/...``, reported
  only when a normal class such as ``NILM`` or ``normal`` is a detector
  class).

Unmatched detections are sorted into outcomes (:data:`OUTCOMES`): a duplicate
on an already-hit point, a hit on a marked cell of another class / group, a
hit on a marked NILM (normal) cell only, or a hit on no marked cell. Only the
last is unverifiable on CRIC (the cell may be an unmarked abnormal cell);
``unmarked_as_fp`` and ``nilm_hits_as_fp`` choose whether those outcomes are
false positives or ignored. See ``docs/point_metric.md`` for the
definitions, FROC and the bias that unmarked cells cause.

One module (over 500 lines): the point matching, the per-class and FROC
curves and the metric class share one definition of a hit; about a third of
the file is the documentation of that definition.
"""
import json
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from terminaltables import AsciiTable

from .array_utils import to_numpy

#: Class names (case-insensitive) that are *normal*; every other class is
#: abnormal (the CRIC COCO contract: abnormal = not ``NILM`` / ``normal``).
NORMAL_NAMES: Tuple[str, ...] = ('NILM', 'normal',
                                 'Negative for intraepithelial lesion')

#: Outcome codes of a detection in one view (class-aware or group-aware).
TP, DUPLICATE, OTHER_ABNORMAL, NILM_ONLY, UNMARKED = 0, 1, 2, 3, 4
OUTCOMES: Dict[int, str] = {
    TP: 'hit: matched one point of its class / group',
    DUPLICATE: 'covers only points of its class / group already hit by a '
               'higher-scoring detection',
    OTHER_ABNORMAL: 'covers no free point of its class / group but a marked '
                    'abnormal cell of another class / group',
    NILM_ONLY: 'covers marked normal (NILM) cells only, none of its class / '
               'group',
    UNMARKED: 'covers no marked cell',
}


def point_cover(boxes: np.ndarray, points: np.ndarray, match: str = 'inside',
                radius_px: Optional[float] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Which detections hit which points, and the distances that rank them.

    Args:
        boxes (np.ndarray): ``[N, 4]`` xyxy detections (pixels).
        points (np.ndarray): ``[M, 2]`` xy points (same frame).
        match (str): ``'inside'``: a point hits a box when
            ``x1 <= x <= x2`` and ``y1 <= y <= y2`` (borders included);
            ``'radius'``: when its distance to the box centre is at most
            ``radius_px``.
        radius_px (float, optional): radius in pixels (``'radius'`` only).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``cover`` bool ``[N, M]`` and
        ``dist`` float64 ``[N, M]`` (distance from each box centre to each
        point, pixels).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    points = np.asarray(points, np.float64).reshape(-1, 2)
    px, py = points[None, :, 0], points[None, :, 1]
    cx = (boxes[:, 0, None] + boxes[:, 2, None]) / 2
    cy = (boxes[:, 1, None] + boxes[:, 3, None]) / 2
    dist = np.hypot(px - cx, py - cy)
    if match == 'inside':
        cover = ((px >= boxes[:, 0, None]) & (px <= boxes[:, 2, None]) &
                 (py >= boxes[:, 1, None]) & (py <= boxes[:, 3, None]))
    elif match == 'radius':
        if radius_px is None:
            raise ValueError("point_cover: match='radius' needs radius_px")
        cover = dist <= radius_px
    else:
        raise ValueError(f"point_cover: match must be 'inside' or 'radius', "
                         f'got {match!r}')
    return cover, dist


def greedy_point_matching(scores: np.ndarray, cover: np.ndarray,
                          dist: np.ndarray) -> np.ndarray:
    """One-to-one greedy matching of detections to points by score.

    Defined sequentially: detections are visited by descending score (ties
    by index); each takes, among the points it covers that no earlier
    detection took, the one nearest to its box centre (ties by index), or
    nothing. Because the visit order is by score, the matches of the
    detections scoring ``>= t`` are exactly what the same matching gives on
    those detections alone: one matching serves every threshold (score
    threshold, FROC, AP).

    Computed in rounds instead of one detection at a time: in a round every
    undecided detection proposes its nearest free point, and a proposal is
    final when no higher-scoring undecided detection covers that point (then
    nothing before it in the sequential order can take the point, and the
    point stays its nearest free one). The top undecided detection is always
    final, so the rounds end; in practice there are one to three rounds of
    ``[N, M]`` array operations, no loop over boxes.

    Args:
        scores (np.ndarray): ``[N]`` detection scores.
        cover (np.ndarray): bool ``[N, M]``, detection ``i`` may hit point
            ``j`` (hit rule and class compatibility already applied).
        dist (np.ndarray): ``[N, M]`` preference (smaller = preferred),
            the box-centre-to-point distance.

    Returns:
        np.ndarray: int64 ``[N]``, index of the matched point or -1.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    n = scores.size
    cover = np.asarray(cover, bool)
    match = np.full(n, -1, np.int64)
    if n == 0 or cover.size == 0 or not cover.any():
        return match
    cover = cover.reshape(n, -1)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-scores, kind='stable')] = np.arange(n)
    free = cover.copy()                        # [N, M] still possible
    active = free.any(axis=1)
    dist = np.asarray(dist, np.float64).reshape(free.shape)
    while active.any():
        pref = np.where(free, dist, np.inf).argmin(axis=1)            # [N]
        top = np.where(free, rank[:, None], n).min(axis=0)            # [M]
        final = np.flatnonzero(active & (top[pref] == rank))
        match[final] = pref[final]
        free[final] = False
        free[:, pref[final]] = False
        active = free.any(axis=1)
    return match


def detection_outcomes(cover: np.ndarray, compatible: np.ndarray,
                       match: np.ndarray,
                       point_abnormal: np.ndarray) -> np.ndarray:
    """Outcome code (:data:`OUTCOMES`) of every detection in one view.

    Args:
        cover (np.ndarray): bool ``[N, M]`` hit rule (no class condition).
        compatible (np.ndarray): bool ``[N, M]`` detection ``i`` and point
            ``j`` have the same class (class view) or group (group view).
        match (np.ndarray): ``[N]`` from :func:`greedy_point_matching` on
            ``cover & compatible``.
        point_abnormal (np.ndarray): bool ``[M]`` the point is an abnormal
            cell.

    Returns:
        np.ndarray: uint8 ``[N]``, first true of ``TP`` (matched),
        ``DUPLICATE`` (covers a compatible point), ``OTHER_ABNORMAL``
        (covers an abnormal point of another class / group), ``NILM_ONLY``
        (covers a normal point), else ``UNMARKED``.
    """
    cover = np.asarray(cover, bool)
    other = cover & ~compatible
    point_abnormal = np.asarray(point_abnormal, bool)[None]
    code = np.full(cover.shape[0], UNMARKED, np.uint8)
    code[other.any(axis=1)] = NILM_ONLY
    code[(other & point_abnormal).any(axis=1)] = OTHER_ABNORMAL
    code[(cover & compatible).any(axis=1)] = DUPLICATE
    code[np.asarray(match) >= 0] = TP
    return code


def counted_as_fp(codes: np.ndarray, unmarked_as_fp: bool = True,
                  nilm_hits_as_fp: bool = True) -> np.ndarray:
    """Bool ``[N]``: which outcome codes are false positives (the rest of
    the non-hits are ignored: neither TP nor FP)."""
    codes = np.asarray(codes)
    fp = (codes == DUPLICATE) | (codes == OTHER_ABNORMAL)
    if nilm_hits_as_fp:
        fp |= codes == NILM_ONLY
    if unmarked_as_fp:
        fp |= codes == UNMARKED
    return fp


def prf(tp: int, fp: int, num_points: int) -> Tuple[float, float, float]:
    """Recall ``tp / points``, precision ``tp / (tp + fp)`` and
    ``F1 = 2 tp / (2 tp + fp + fn)``; nan when the denominator is 0."""
    fn = num_points - tp
    recall = tp / num_points if num_points else math.nan
    precision = tp / (tp + fp) if tp + fp else math.nan
    den = 2 * tp + fp + fn
    f1 = 2 * tp / den if den else math.nan
    return recall, precision, f1


def _sorted_cumsums(scores, is_tp, is_fp):
    order = np.argsort(-np.asarray(scores, np.float64), kind='stable')
    return (np.asarray(scores, np.float64)[order],
            np.cumsum(np.asarray(is_tp, np.int64)[order]),
            np.cumsum(np.asarray(is_fp, np.int64)[order]))


def voc_ap(scores: np.ndarray, is_tp: np.ndarray, is_fp: np.ndarray,
           num_points: int) -> float:
    """All-point interpolated average precision (PASCAL VOC 2010+).

    Detections sorted by descending score (ties by index, as VOC); precision
    is made monotone (``p(r) = max_{r' >= r} p(r')``) and integrated over the
    recall steps. Detections that are neither TP nor FP must be left out.

    Args:
        scores (np.ndarray): ``[D]``.
        is_tp (np.ndarray): bool ``[D]``.
        is_fp (np.ndarray): bool ``[D]``.
        num_points (int): number of points (recall denominator).

    Returns:
        float: AP in [0, 1]; nan when ``num_points == 0``.
    """
    if num_points == 0:
        return math.nan
    _, tp, fp = _sorted_cumsums(scores, is_tp, is_fp)
    if tp.size == 0:
        return 0.
    recall = tp / num_points
    precision = tp / np.maximum(tp + fp, 1)
    mrec = np.concatenate([[0.], recall, [1.]])
    mpre = np.concatenate([[0.], precision, [0.]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


def froc_sensitivities(scores: np.ndarray, is_tp: np.ndarray,
                       is_fp: np.ndarray, num_points: int, num_images: int,
                       fp_rates: Sequence[float]) -> np.ndarray:
    """Sensitivity at given average numbers of false positives per image.

    The operating points are the score thresholds (every distinct score: a
    threshold keeps all detections scoring at least it, ties together);
    threshold ``t`` has sensitivity ``TP(t) / num_points`` and
    ``FPPI(t) = FP(t) / num_images``. The sensitivity at rate ``r`` is the
    highest sensitivity of a threshold with ``FPPI <= r`` (0 when even the
    strictest threshold exceeds ``r``; no interpolation between operating
    points).

    Args:
        scores (np.ndarray): ``[D]`` detections of all images.
        is_tp (np.ndarray): bool ``[D]``.
        is_fp (np.ndarray): bool ``[D]`` (neither: ignored detection).
        num_points (int): points to find in all images.
        num_images (int): evaluated images (with and without points).
        fp_rates (Sequence[float]): FPPI values, e.g. ``(0.5, 1, 2, 4, 8)``.

    Returns:
        np.ndarray: float64 ``[len(fp_rates)]``; nan when
        ``num_points == 0``.
    """
    rates = np.asarray(fp_rates, np.float64).reshape(-1)
    if num_points == 0 or num_images == 0:
        return np.full(rates.shape, math.nan)
    s, tp, fp = _sorted_cumsums(scores, is_tp, is_fp)
    last = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, bool)
    sens = np.r_[0., tp[last] / num_points]
    fppi = np.r_[0., fp[last] / num_images]
    ok = fppi[None, :] <= rates[:, None] + 1e-12                 # [R, T+1]
    return np.where(ok, sens[None, :], 0.).max(axis=1)


def _is_normal(name: str, normal_names: Sequence[str]) -> bool:
    return str(name).strip().lower() in {n.lower() for n in normal_names}


@METRICS.register_module()
class PointHitMetric(BaseMetric):
    """Recall, precision, F1, FROC and AP of detections against marked
    nucleus points.

    Ground truth is read from the COCO ``ann_file`` (the cervdet CRIC
    contract, ``tools/dataset_converters/cric_to_coco.py``) and looked up by
    the ``img_id`` of each data sample:

    - every annotation is a marked cell of its category, at its ``point``
      (``[x, y]`` in the image's pixel frame; without ``point``, the centre
      of its ``bbox``), abnormal unless its ``bethesda_class`` (else the
      category name) is one of ``normal_classes``; ``iscrowd`` is not
      looked at (CRIC has none);
    - every ``other_points`` entry of an image (``{"point": [x, y],
      "bethesda_class": ...}``: cells marked by the annotators that are not
      boxes of this label set, e.g. NILM cells when NILM is background) is a
      marked cell of no detector class. A NILM one is a known normal cell:
      an abnormal detection on it is a proven false positive
      (``nilm_hits_as_fp``); an abnormal one (a class left out of the label
      set) still counts as an abnormal cell to find in ``abnormal/...``.

    Predictions: ``pred_instances`` (``bboxes`` ``[N, 4]`` xyxy in original
    image pixels as mmdet's ``rescale=True`` test gives them, ``scores``
    ``[N]``, ``labels`` ``[N]`` indices into ``dataset_meta['classes']``).

    Outputs (fractions in [0, 1], with the default prefix ``point/``; ``T``
    is ``score_thr`` printed with ``%g``):

    - ``abnormal/recall@T``, ``abnormal/precision@T``, ``abnormal/f1@T``,
      ``abnormal/tp@T``, ``abnormal/fp@T``: detections scoring ``>= T`` of
      any abnormal class against all abnormal points, class-agnostic;
    - ``abnormal/on_nilm@T``, ``abnormal/on_unmarked@T``: how many of those
      detections hit no abnormal point but a marked NILM cell only / no
      marked cell (counted as FP or ignored as the flags say);
    - ``abnormal/sens@<r>fppi`` for ``r`` in ``fp_rates`` and
      ``abnormal/froc`` (their mean): FROC over all detections
      (:func:`froc_sensitivities`), images without points included;
    - ``abnormal/AP``: VOC all-point AP of abnormal as one class
      (:func:`voc_ap`) over all detections;
    - ``abnormal/num_points``;
    - the same recall / precision / F1 / AP as ``normal/...`` when a class
      of ``normal_classes`` is a detector class;
    - ``<class>/recall@T``, ``<class>/precision@T``, ``<class>/f1@T``,
      ``<class>/AP`` per detector class, class-aware (a class named
      ``abnormal`` or ``normal``, as in the binary label set, is reported
      under the group keys only: it is the group).

    Undefined values (no point, no detection) are nan. A table of all of it
    is printed through the current logger.

    Args:
        ann_file (str): COCO json with the points (the dataset's own).
        match (str): ``'inside'`` (the point lies in the box, borders
            included) or ``'radius'`` (box centre within ``radius_um`` of the
            point). Defaults to ``'inside'``.
        radius_um (float, optional): radius of ``'radius'`` in micrometres.
        um_per_px (float, optional): pixel size for images whose entry in
            ``ann_file`` has no ``um_per_px`` (the entry wins when both
            exist; it is the size of one pixel of *that* image).
        score_thr (float): operating threshold of the ``@T`` values.
            Defaults to 0.5.
        fp_rates (Sequence[float]): FROC rates (false positives per image).
            Defaults to ``(0.5, 1, 2, 4, 8)``.
        unmarked_as_fp (bool): an unmatched detection on no marked cell is
            a false positive (True, default: standard and conservative; on
            CRIC it underestimates precision because cells are not all
            marked) or ignored (False: an optimistic bound).
        nilm_hits_as_fp (bool): an unmatched detection on a marked normal
            cell only is a false positive (True, default: the annotators
            called that cell normal) or ignored (False; useful with
            ``'inside'`` and large boxes that reach a neighbouring NILM
            nucleus).
        normal_classes (Sequence[str]): class / Bethesda names that are
            normal (case-insensitive). Defaults to :data:`NORMAL_NAMES`.
        classwise (bool): report per-class values. Defaults to True.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): defaults to ``'point'``.
        backend_args (dict, optional): file client arguments for
            ``ann_file``.
    """
    default_prefix: Optional[str] = 'point'

    def __init__(self,
                 ann_file: str,
                 match: str = 'inside',
                 radius_um: Optional[float] = None,
                 um_per_px: Optional[float] = None,
                 score_thr: float = 0.5,
                 fp_rates: Sequence[float] = (0.5, 1, 2, 4, 8),
                 unmarked_as_fp: bool = True,
                 nilm_hits_as_fp: bool = True,
                 normal_classes: Sequence[str] = NORMAL_NAMES,
                 classwise: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if match not in ('inside', 'radius'):
            raise ValueError("PointHitMetric: match must be 'inside' or "
                             f"'radius', got {match!r}")
        if match == 'radius' and (radius_um is None or radius_um <= 0):
            raise ValueError("PointHitMetric: match='radius' needs radius_um "
                             f'> 0 (micrometres), got {radius_um!r}')
        if um_per_px is not None and um_per_px <= 0:
            raise ValueError(f'PointHitMetric: um_per_px must be > 0, got '
                             f'{um_per_px}')
        rates = [float(r) for r in fp_rates]
        if not rates or any(r <= 0 for r in rates):
            raise ValueError('PointHitMetric: fp_rates must be positive '
                             f'false positives per image, got {fp_rates!r}')
        self.ann_file = ann_file
        self.match = match
        self.radius_um = None if radius_um is None else float(radius_um)
        self.um_per_px = None if um_per_px is None else float(um_per_px)
        self.score_thr = float(score_thr)
        self.fp_rates = rates
        self.unmarked_as_fp = bool(unmarked_as_fp)
        self.nilm_hits_as_fp = bool(nilm_hits_as_fp)
        self.normal_classes = tuple(normal_classes)
        self.classwise = classwise
        self._images = self._load_points(ann_file, backend_args)
        self._classes: Optional[Tuple[str, ...]] = None

    # ----------------------------------------------------------- ground truth
    def _load_points(self, ann_file: str,
                     backend_args: Optional[dict]) -> Dict[int, dict]:
        """Per ``img_id``: ``points`` float64 ``[M, 2]``, ``names`` (class
        name of each point, None for ``other_points``), ``abnormal`` bool
        ``[M]``, ``size`` (w, h), ``file_name``, ``radius_px``."""
        with get_local_path(ann_file, backend_args=backend_args) as path:
            with open(path) as f:
                coco = json.load(f)
        for key in ('images', 'annotations', 'categories'):
            if key not in coco:
                raise KeyError(f'PointHitMetric: {ann_file} has no '
                               f'"{key}" list: not a COCO detection file')
        self._cat_names = OrderedDict(
            (c['id'], c['name']) for c in sorted(coco['categories'],
                                                 key=lambda c: c['id']))
        anns_of: Dict[int, list] = {}
        for ann in coco['annotations']:
            anns_of.setdefault(ann['image_id'], []).append(ann)
        images = {}
        missing_um = []
        for img in coco['images']:
            pts, names, abnormal = [], [], []
            for ann in anns_of.pop(img['id'], []):
                if ann['category_id'] not in self._cat_names:
                    raise KeyError(
                        f'PointHitMetric: {ann_file}: annotation {ann["id"]} '
                        f'has category_id {ann["category_id"]}, which is not '
                        'in "categories"')
                name = self._cat_names[ann['category_id']]
                if 'point' in ann:
                    pt = self._check_point(ann['point'], ann_file,
                                           f'annotation {ann["id"]}')
                else:
                    x, y, w, h = ann['bbox']
                    pt = (x + w / 2, y + h / 2)
                pts.append(pt)
                names.append(name)
                abnormal.append(not _is_normal(
                    ann.get('bethesda_class', name), self.normal_classes))
            for k, other in enumerate(img.get('other_points', []) or []):
                where = f'image {img["id"]} other_points[{k}]'
                if 'bethesda_class' not in other:
                    raise KeyError(
                        f'PointHitMetric: {ann_file}: {where} has no '
                        '"bethesda_class" (the Bethesda name of the marked '
                        'cell); rebuild the file with '
                        'tools/dataset_converters/cric_to_coco.py')
                pts.append(self._check_point(other.get('point'), ann_file,
                                             where))
                names.append(None)
                abnormal.append(not _is_normal(other['bethesda_class'],
                                               self.normal_classes))
            um = img.get('um_per_px')
            if um is None:
                um = self.um_per_px
            elif not float(um) > 0:
                raise ValueError(
                    f'PointHitMetric: {ann_file}: image {img["id"]} '
                    f'({img.get("file_name")}) has "um_per_px" {um!r}; '
                    'expected micrometres per pixel > 0')
            radius_px = None
            if self.match == 'radius':
                if um is None:
                    missing_um.append(img.get('file_name', img['id']))
                else:
                    radius_px = self.radius_um / float(um)
            images[img['id']] = dict(
                points=np.asarray(pts, np.float64).reshape(-1, 2),
                names=names, abnormal=np.asarray(abnormal, bool),
                size=(img.get('width'), img.get('height')),
                file_name=img.get('file_name', str(img['id'])),
                radius_px=radius_px)
        if anns_of:
            raise KeyError(
                f'PointHitMetric: {ann_file}: annotations refer to image ids '
                f'{sorted(anns_of)[:5]} that are not in "images"')
        if missing_um:
            raise ValueError(
                f"PointHitMetric: match='radius' converts radius_um to pixels "
                f'with the field "um_per_px" of each image in {ann_file}, but '
                f'{len(missing_um)} image(s) lack it (e.g. {missing_um[0]}) '
                'and no um_per_px argument was given: pass '
                'PointHitMetric(um_per_px=...) (micrometres per pixel of the '
                'images as stored) or write the field with the converter')
        return images

    @staticmethod
    def _check_point(pt, ann_file: str, where: str) -> Tuple[float, float]:
        try:
            x, y = (float(v) for v in pt)
        except (TypeError, ValueError):
            raise ValueError(
                f'PointHitMetric: {ann_file}: {where} has "point" {pt!r}; '
                'expected [x, y] in pixels of the image') from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f'PointHitMetric: {ann_file}: {where} has a '
                             f'non-finite "point" {pt!r}')
        return x, y

    def _class_names(self) -> Tuple[str, ...]:
        """Detector classes: ``dataset_meta['classes']``, else the
        categories of ``ann_file`` by id."""
        meta = self.dataset_meta or {}
        names = tuple(str(n) for n in (meta.get('classes')
                                       or self._cat_names.values()))
        if names != self._classes:
            self._classes = names
            cats = set(self._cat_names.values())
            if set(names) != cats:
                print_log(
                    f'PointHitMetric: the dataset classes {list(names)} and '
                    f'the categories of {self.ann_file} '
                    f'{sorted(cats)} differ: a detector class without a '
                    'category has no point to hit, and points of a category '
                    'that is no class count only in abnormal/normal',
                    logger='current', level=30)
            index = {n: i for i, n in enumerate(self._classes)}
            for img in self._images.values():
                img['cls'] = np.asarray(
                    [index.get(n, -1) if n is not None else -1
                     for n in img['names']], np.int64)
        return self._classes

    # -------------------------------------------------------------- process
    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Match the detections of each image (both views) and keep, per
        image, their scores, labels and outcome codes plus the points per
        class and group (one tuple per sample, small and picklable for
        distributed collection)."""
        classes = self._class_names()
        det_abnormal_of = np.asarray(
            [not _is_normal(c, self.normal_classes) for c in classes], bool)
        for sample in data_samples:
            img_id = sample['img_id']
            gt = self._images.get(img_id)
            if gt is None:
                raise KeyError(
                    f'PointHitMetric: img_id {img_id!r} '
                    f'({sample.get("img_path")}) is not in {self.ann_file}: '
                    'give the metric the ann_file of the evaluated dataset')
            self._check_frame(sample, gt)
            pred = sample['pred_instances']
            boxes = to_numpy(pred['bboxes']).astype(np.float64).reshape(-1, 4)
            scores = to_numpy(pred['scores']).astype(np.float64).reshape(-1)
            labels = to_numpy(pred['labels']).astype(np.int64).reshape(-1)
            if labels.size and (labels.min() < 0 or
                                labels.max() >= len(classes)):
                raise ValueError(
                    f'PointHitMetric: predicted labels of img_id {img_id} '
                    f'range {labels.min()}..{labels.max()} but the dataset '
                    f'has {len(classes)} classes {classes}')
            det_abn = det_abnormal_of[labels]
            cover, dist = point_cover(boxes, gt['points'], self.match,
                                      gt['radius_px'])
            same_cls = labels[:, None] == gt['cls'][None, :]
            same_grp = det_abn[:, None] == gt['abnormal'][None, :]
            m_cls = greedy_point_matching(scores, cover & same_cls, dist)
            m_grp = greedy_point_matching(scores, cover & same_grp, dist)
            code_cls = detection_outcomes(cover, same_cls, m_cls,
                                          gt['abnormal'])
            code_grp = detection_outcomes(cover, same_grp, m_grp,
                                          gt['abnormal'])
            cls_pts = gt['cls'][gt['cls'] >= 0]
            self.results.append(dict(
                scores=scores.astype(np.float32), labels=labels.astype(
                    np.int32), code_cls=code_cls, code_grp=code_grp,
                cls_points=np.bincount(cls_pts, minlength=len(classes)),
                abnormal_points=int(gt['abnormal'].sum()),
                normal_points=int((~gt['abnormal']).sum())))

    def _check_frame(self, sample: dict, gt: dict) -> None:
        """Predictions are in original pixels: that frame must be the one
        of the points (the image's ``width`` x ``height``)."""
        w, h = gt['size']
        shape = sample.get('ori_shape')
        if shape is None or w is None or h is None:
            return
        if (int(shape[1]), int(shape[0])) != (int(w), int(h)):
            raise ValueError(
                f'PointHitMetric: {gt["file_name"]} is {w}x{h} in '
                f'{self.ann_file} but was evaluated at {shape[1]}x{shape[0]} '
                '(ori_shape): the points and the predictions are in '
                'different pixel frames; use the ann_file written for these '
                'images')

    # -------------------------------------------------------------- compute
    def _view(self, scores, codes, num_points, num_images,
              froc: bool = False) -> Dict[str, float]:
        """Numbers of one view from its detections' scores and codes."""
        is_tp = codes == TP
        is_fp = counted_as_fp(codes, self.unmarked_as_fp,
                              self.nilm_hits_as_fp)
        keep = scores >= self.score_thr
        tp, fp = int((is_tp & keep).sum()), int((is_fp & keep).sum())
        recall, precision, f1 = prf(tp, fp, num_points)
        out = dict(recall=recall, precision=precision, f1=f1, tp=tp, fp=fp,
                   on_nilm=int(((codes == NILM_ONLY) & keep).sum()),
                   on_unmarked=int(((codes == UNMARKED) & keep).sum()),
                   dets=int(keep.sum()), num_points=int(num_points))
        counted = is_tp | is_fp
        out['AP'] = voc_ap(scores[counted], is_tp[counted], is_fp[counted],
                           num_points)
        if froc:
            out['sens'] = froc_sensitivities(
                scores[counted], is_tp[counted], is_fp[counted], num_points,
                num_images, self.fp_rates)
        return out

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Flat dict of the numbers listed in the class docstring."""
        classes = self._class_names()
        num_images = len(results)
        if results:
            scores = np.concatenate([r['scores'] for r in results]
                                    ).astype(np.float64)
            labels = np.concatenate([r['labels'] for r in results])
            code_cls = np.concatenate([r['code_cls'] for r in results])
            code_grp = np.concatenate([r['code_grp'] for r in results])
            cls_points = np.sum([r['cls_points'] for r in results], axis=0)
        else:
            scores = np.zeros(0)
            labels = np.zeros(0, np.int64)
            code_cls = code_grp = np.zeros(0, np.uint8)
            cls_points = np.zeros(len(classes), np.int64)
        det_abn = np.asarray([not _is_normal(c, self.normal_classes)
                              for c in classes], bool)[labels]
        thr = f'@{self.score_thr:g}'
        views = OrderedDict()
        views['abnormal'] = self._view(
            scores[det_abn], code_grp[det_abn],
            sum(r['abnormal_points'] for r in results), num_images, froc=True)
        if any(_is_normal(c, self.normal_classes) for c in classes):
            views['normal'] = self._view(
                scores[~det_abn], code_grp[~det_abn],
                sum(r['normal_points'] for r in results), num_images)
        per_class = OrderedDict()
        if self.classwise:
            for c, name in enumerate(classes):
                if name.lower() in ('abnormal', 'normal'):
                    continue
                sel = labels == c
                per_class[name] = self._view(scores[sel], code_cls[sel],
                                             int(cls_points[c]), num_images)

        out: Dict[str, float] = OrderedDict()
        ab = views['abnormal']
        for k in ('recall', 'precision', 'f1', 'tp', 'fp', 'on_nilm',
                  'on_unmarked'):
            out[f'abnormal/{k}{thr}'] = ab[k]
        for r, s in zip(self.fp_rates, ab['sens']):
            out[f'abnormal/sens@{r:g}fppi'] = float(s)
        out['abnormal/froc'] = float(np.mean(ab['sens']))
        out['abnormal/AP'] = ab['AP']
        out['abnormal/num_points'] = ab['num_points']
        for group, v in list(views.items())[1:] + list(per_class.items()):
            for k in ('recall', 'precision', 'f1'):
                out[f'{group}/{k}{thr}'] = v[k]
            out[f'{group}/AP'] = v['AP']
        self._log_table(views, per_class, num_images)
        return out

    def _log_table(self, views: dict, per_class: dict,
                   num_images: int) -> None:
        def f(v):
            return '-' if isinstance(v, float) and math.isnan(v) \
                else f'{v:.3f}'

        head = ['cells', 'points', f'dets>={self.score_thr:g}', 'TP', 'FP',
                'on NILM', 'unmarked', 'recall', 'precision', 'F1', 'AP']
        rows = [head]
        for name, v in list(views.items()) + list(per_class.items()):
            rows.append([name, v['num_points'], v['dets'], v['tp'], v['fp'],
                         v['on_nilm'], v['on_unmarked'], f(v['recall']),
                         f(v['precision']), f(v['f1']), f(v['AP'])])
        rule = (f"match={self.match}"
                + (f' radius={self.radius_um:g}um' if self.match == 'radius'
                   else '')
                + f'; {num_images} images; FP counts duplicates, other-class'
                f' hits{", NILM hits" if self.nilm_hits_as_fp else ""}'
                f'{", unmarked hits" if self.unmarked_as_fp else ""}')
        table = AsciiTable(rows, title='PointHitMetric')
        froc = AsciiTable(
            [[f'FPPI {r:g}' for r in self.fp_rates] + ['mean'],
             [f(float(s)) for s in views['abnormal']['sens']]
             + [f(float(np.mean(views['abnormal']['sens'])))]],
            title='abnormal FROC sensitivity')
        print_log(f'{rule}\n{table.table}\n{froc.table}', logger='current')


__all__ = ['PointHitMetric', 'point_cover', 'greedy_point_matching',
           'detection_outcomes', 'counted_as_fp', 'prf', 'voc_ap',
           'froc_sensitivities', 'NORMAL_NAMES', 'OUTCOMES']
