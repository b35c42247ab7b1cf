"""Split a COCO training file for semi-supervised detection with the
protocol of Chai et al. (ISBI 2022), Sec. 3.2: "We vary the number of labeled
data ... while keeping the unlabeled data as the same amount".

Default protocol ``pool`` writes, into ``out_dir`` (``--out-dir``):

- ``train_unlabeled.json``: ONE unlabeled set of constant size, the same for
  every labeled fraction: ``--unlabeled-percent`` (50) of the training
  images held out, or the images of a separate file ``--unlabeled-ann``
  (the paper's unlabeled patches come from other patients' slides,
  Sec. 3.1). ``annotations: []`` and no per-image label keys
  (``other_points`` of the CRIC files); ``categories`` kept so that mmdet's
  ``CocoDataset`` resolves its classes;
- ``train_labeled_<p>.json`` for every ``--percents`` ``p`` (25 50 75 100):
  ``p`` % of the other training images with all their annotations (a full
  COCO file: other top-level keys and ``categories`` kept). The 100 % row is
  still semi-supervised: all labeled images plus the same unlabeled set.

Protocol ``remainder`` (an option, not the paper's) writes
``train_labeled_<p>.json`` and ``train_unlabeled_<p>.json`` = the other
training images, so the unlabeled set shrinks as ``p`` grows and is empty at
100 %.

Every split is

- disjoint: labeled and unlabeled images never overlap (nor share a
  ``--group-by`` value, e.g. a patient or slide key of the image entries;
  by default every image is its own group: a CRIC field is one image);
- stratified: groups with boxes (positives) and without (negatives) are split
  separately, ``round(f * n)`` of each (half up; at least one positive in a
  labeled fraction ``> 0`` and, when there are two or more, in the pool);
- nested: each stratum is permuted once with ``--seed``; the pool takes a
  prefix, every labeled fraction a prefix of the rest, so a smaller labeled
  set is a subset of a larger one;
- reproducible: same file + options -> same split; images keep the file's
  order.

Use with ``configs/_base_/datasets/semi_cervical_mosaic_bethesda_512.py`` (or
mmdet's ``semi_coco_detection.py``)::

    labeled_dataset = dict(ann_file='annotations/semi/train_labeled_25.json',
                           data_prefix=dict(img='images/train/'))
    unlabeled_dataset = dict(ann_file='annotations/semi/train_unlabeled.json',
                             data_prefix=dict(img='images/train/'),
                             filter_cfg=dict(filter_empty_gt=False))

One module of about 520 lines on purpose: the checks of the input file, the
protocol and the writer share their helpers and are read together.

``tools/dataset_converters/split_semi.py`` is the command line::

    python tools/dataset_converters/split_semi.py \\
        data/cric-cervix/annotations/train.json \\
        --out-dir data/cric-cervix/annotations/semi --seed 0
"""
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_PERCENTS = (25., 50., 75., 100.)
DEFAULT_UNLABELED_PERCENT = 50.
PROTOCOLS = ('pool', 'remainder')
# image-entry keys that carry labels: dropped from unlabeled images
LABEL_IMAGE_KEYS = ('other_points', )


class CocoSplitError(ValueError):
    """A COCO file that cannot be split (message names the file and fix)."""


def load_coco(path: Path) -> dict:
    """Read and check a COCO detection file.

    Args:
        path (Path): COCO JSON.

    Returns:
        dict: the parsed file.

    Raises:
        CocoSplitError: missing, empty, not JSON, no ``images``, images
            without ``id``, duplicate image ids, annotations without
            ``image_id`` or pointing to unknown images.
    """
    path = Path(path)
    if not path.is_file():
        raise CocoSplitError(f'{path}: file not found')
    text = path.read_text()
    if not text.strip():
        raise CocoSplitError(f'{path}: the file is empty; give a COCO JSON '
                             'with "images", "annotations" and "categories"')
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as err:
        raise CocoSplitError(
            f'{path}: not valid JSON ({err.msg} at line {err.lineno}, column '
            f'{err.colno}); the file is truncated or corrupt: re-export it'
        ) from None
    if not isinstance(coco, dict):
        raise CocoSplitError(f'{path}: top level is a {type(coco).__name__}, '
                             'a COCO file is an object with "images"')
    images = coco.get('images')
    if not isinstance(images, list) or not images:
        raise CocoSplitError(f'{path}: field "images" is missing or empty; '
                             'nothing to split')
    anns = coco.setdefault('annotations', [])
    if not isinstance(anns, list):
        raise CocoSplitError(f'{path}: field "annotations" must be a list')
    if 'categories' not in coco:
        raise CocoSplitError(f'{path}: field "categories" is missing; mmdet '
                             'needs it to map class names to ids')
    bad = [i for i, im in enumerate(images)
           if not isinstance(im, dict) or 'id' not in im]
    if bad:
        raise CocoSplitError(f'{path}: images[{bad[0]}] (and {len(bad) - 1} '
                             'more) have no "id"')
    ids = np.asarray([im['id'] for im in images])
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise CocoSplitError(f'{path}: duplicate image ids, e.g. '
                             f'{uniq[counts > 1][:5].tolist()}; ids must be '
                             'unique (check_coco.py lists them)')
    bad = [i for i, a in enumerate(anns)
           if not isinstance(a, dict) or 'image_id' not in a]
    if bad:
        raise CocoSplitError(f'{path}: annotations[{bad[0]}] (and '
                             f'{len(bad) - 1} more) have no "image_id"')
    ann_img = np.asarray([a['image_id'] for a in anns])
    unknown = ~np.isin(ann_img, ids) if len(anns) else np.zeros(0, bool)
    if unknown.any():
        raise CocoSplitError(
            f'{path}: {int(unknown.sum())} annotations point to unknown '
            f'image ids, e.g. {ann_img[unknown][:5].tolist()}; fix or drop '
            'them (check_coco.py reports them)')
    return coco


def _ann_image_index(coco: dict) -> np.ndarray:
    """Position in ``coco['images']`` of each annotation's image, int64
    ``[num_annotations]`` (ids checked unique and known by
    :func:`load_coco`)."""
    ids = np.asarray([im['id'] for im in coco['images']])
    ann_img = np.asarray([a['image_id'] for a in coco['annotations']])
    if not len(ann_img):
        return np.zeros(0, np.int64)
    order = np.argsort(ids, kind='stable')
    return order[np.searchsorted(ids[order], ann_img)].astype(np.int64)


def image_groups(coco: dict, group_by: Optional[str] = None,
                 path: str = 'the COCO file') -> np.ndarray:
    """Group index of every image, int64 ``[num_images]``.

    Args:
        coco (dict): COCO dict.
        group_by (str, optional): Image-entry key whose equal values must
            stay on one side of a split (e.g. a patient or slide id).
            ``None``: every image is its own group.
        path (str): File name for error messages.

    Raises:
        CocoSplitError: an image has no ``group_by`` key.
    """
    images = coco['images']
    if group_by is None:
        return np.arange(len(images), dtype=np.int64)
    missing = [i for i, im in enumerate(images) if group_by not in im]
    if missing:
        raise CocoSplitError(
            f'{path}: images[{missing[0]}] (and {len(missing) - 1} more) '
            f'have no "{group_by}" (--group-by); add the key to every '
            'image entry or drop --group-by to split per image')
    values = [json.dumps(im[group_by], sort_keys=True) for im in images]
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def _round_half_up(n: int, fraction: float) -> int:
    """``round(fraction * n)`` half up, in ``[0, n]``."""
    return min(n, int(math.floor(fraction * n + 0.5)))


def _group_strata(coco: dict, groups: np.ndarray, seed: int
                  ) -> Tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Positive flag and in-stratum rank of every group (one permutation
    per stratum), and the generator (for later draws)."""
    num = len(coco['images'])
    positive_img = np.bincount(_ann_image_index(coco), minlength=num) > 0
    num_groups = int(groups.max()) + 1 if num else 0
    positive = np.zeros(num_groups, bool)
    np.logical_or.at(positive, groups, positive_img)
    rng = np.random.default_rng(seed)
    rank = np.empty(num_groups, np.int64)
    for is_pos in (True, False):
        members = np.flatnonzero(positive == is_pos)
        rank[members[rng.permutation(len(members))]] = np.arange(len(members))
    return positive, rank, rng


def split_pool(coco: dict,
               unlabeled_percent: float = DEFAULT_UNLABELED_PERCENT,
               seed: int = 0,
               groups: Optional[np.ndarray] = None) -> np.ndarray:
    """The constant unlabeled pool: a stratified ``unlabeled_percent`` of
    the images (of the groups).

    Args:
        coco (dict): COCO dict (``images``, ``annotations``).
        unlabeled_percent (float): Pool size in ``(0, 100)`` percent.
        seed (int): Seed of the permutation.
        groups (np.ndarray, optional): From :func:`image_groups`; default
            one group per image.

    Returns:
        np.ndarray: bool ``[num_images]``, True for pool images. At least one
        positive group stays outside the pool, and one enters it when there
        are two or more.
    """
    if not 0. < float(unlabeled_percent) < 100.:
        raise ValueError('unlabeled_percent must be in (0, 100); got '
                         f'{unlabeled_percent}')
    if groups is None:
        groups = image_groups(coco)
    positive, rank, _ = _group_strata(coco, groups, seed + 1_000_003)
    pool_group = np.zeros(len(positive), bool)
    for is_pos in (True, False):
        members = np.flatnonzero(positive == is_pos)
        k = _round_half_up(len(members), unlabeled_percent / 100.)
        if is_pos and len(members):
            k = min(max(k, 1 if len(members) >= 2 else 0), len(members) - 1)
        pool_group[members] = rank[members] < k
    return pool_group[groups]


def split_semi(coco: dict, percents: Sequence[float] = DEFAULT_PERCENTS,
               seed: int = 0, exclude: Optional[np.ndarray] = None,
               groups: Optional[np.ndarray] = None) -> Dict[float,
                                                            np.ndarray]:
    """Nested stratified labeled masks of the images of ``coco``.

    Args:
        coco (dict): COCO dict (``images``, ``annotations``).
        percents (Sequence[float]): labeled percentages in ``(0, 100]`` of
            the candidate images (all but ``exclude``).
        seed (int): seed of the permutations.
        exclude (np.ndarray, optional): bool ``[num_images]``, images that
            are never labeled (the unlabeled pool).
        groups (np.ndarray, optional): From :func:`image_groups`; default
            one group per image. ``exclude`` must hold whole groups.

    Returns:
        dict[float, np.ndarray]: percentage -> bool ``[num_images]``, True
        for labeled images (in the order of ``coco['images']``).
    """
    percents = [float(p) for p in percents]
    bad = [p for p in percents if not 0. < p <= 100.]
    if bad or not percents:
        raise ValueError(f'percents must be in (0, 100], got {percents}')
    num = len(coco['images'])
    if groups is None:
        groups = image_groups(coco)
    if exclude is None:
        exclude = np.zeros(num, bool)
    num_groups = int(groups.max()) + 1 if num else 0
    excluded = np.zeros(num_groups, bool)
    excluded[groups[exclude]] = True
    positive, rank, _ = _group_strata(coco, groups, seed)
    masks = {}
    for p in percents:
        labeled = np.zeros(num_groups, bool)
        for is_pos in (True, False):
            members = np.flatnonzero((positive == is_pos) & ~excluded)
            # rank among the candidates of the stratum
            order = members[np.argsort(rank[members], kind='stable')]
            k = _round_half_up(len(members), p / 100.)
            if is_pos and len(members):
                k = max(k, 1)
            labeled[order[:k]] = True
        masks[p] = labeled[groups]
    return masks


def _pct_name(p: float) -> str:
    """File-name form of a percentage: ``25``, ``12.5``."""
    return f'{p:g}'


def output_paths(out_dir: Path, p: float,
                 protocol: str = 'pool') -> Tuple[Path, Path]:
    """Labeled and unlabeled output files of percentage ``p``.

    ``(out_dir/train_labeled_<p>.json, out_dir/train_unlabeled.json)``
    (protocol ``pool``) or ``(..., out_dir/train_unlabeled_<p>.json)``
    (``remainder``).
    """
    name = _pct_name(p)
    unlabeled = pool_path(out_dir) if protocol == 'pool' else \
        Path(out_dir) / f'train_unlabeled_{name}.json'
    return Path(out_dir) / f'train_labeled_{name}.json', unlabeled


def pool_path(out_dir: Path) -> Path:
    """The constant unlabeled set of protocol ``pool``."""
    return Path(out_dir) / 'train_unlabeled.json'


def _subset(coco: dict, keep: np.ndarray, with_anns: bool) -> dict:
    """COCO dict of the images where ``keep``; annotations of those images
    when ``with_anns`` else ``[]`` (and the images' label keys dropped);
    other top-level keys as they are."""
    images = [im for im, k in zip(coco['images'], keep) if k]
    if not with_anns:
        images = [{k: v for k, v in im.items() if k not in LABEL_IMAGE_KEYS}
                  for im in images]
    out = {k: v for k, v in coco.items() if k not in ('images', 'annotations')}
    out['images'] = images
    if with_anns:
        sel = keep[_ann_image_index(coco)]
        out['annotations'] = [a for a, s in zip(coco['annotations'], sel)
                              if s]
    else:
        out['annotations'] = []
    return out


def _check_free(paths: Sequence[Path], force_overwrite: bool) -> None:
    """Refuse to overwrite existing outputs (nothing written then)."""
    existing = [str(f) for f in paths if Path(f).exists()]
    if existing and not force_overwrite:
        raise FileExistsError(
            f'{len(existing)} output files exist ({", ".join(existing[:4])}'
            f'{", ..." if len(existing) > 4 else ""}); pass --force-overwrite '
            'to replace them or choose another --out-dir')


def write_splits(coco: dict, masks: Dict[float, np.ndarray], out_dir: Path,
                 force_overwrite: bool = False,
                 unlabeled: Optional[object] = None) -> List[dict]:
    """Write the labeled / unlabeled files of every fraction.

    Args:
        coco (dict): the source COCO dict.
        masks (dict[float, np.ndarray]): from :func:`split_semi`.
        out_dir (Path): output folder (created).
        force_overwrite (bool): replace existing outputs.
        unlabeled (np.ndarray | dict, optional): protocol ``pool``: the bool
            pool mask of ``coco`` (:func:`split_pool`) or a separate COCO
            dict whose images are the unlabeled set; written once to
            ``train_unlabeled.json``. ``None``: protocol ``remainder`` (the
            unlabeled set of ``p`` is every image not labeled at ``p``).

    Returns:
        list[dict]: per fraction ``percent``, ``labeled`` / ``unlabeled``
        (paths) and counts ``labeled_images``, ``labeled_positive``,
        ``labeled_negative``, ``labeled_boxes``, ``unlabeled_images``,
        ``unlabeled_positive``, ``unlabeled_negative`` (positives: images
        with boxes in the source; 0 for a separate unlabeled file).

    Raises:
        FileExistsError: outputs exist and not ``force_overwrite`` (nothing
            is written then).
    """
    out_dir = Path(out_dir)
    protocol = 'remainder' if unlabeled is None else 'pool'
    paths = {p: output_paths(out_dir, p, protocol) for p in masks}
    _check_free({f for pair in paths.values() for f in pair},
                force_overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    box_count = np.bincount(_ann_image_index(coco),
                            minlength=len(coco['images']))
    positive = box_count > 0
    if isinstance(unlabeled, dict):
        pool = _subset(unlabeled, np.ones(len(unlabeled['images']), bool),
                       False)
        pool['categories'] = coco['categories']
        pool_counts = (len(pool['images']), 0, len(pool['images']))
    elif unlabeled is not None:
        pool = _subset(coco, unlabeled, False)
        pool_counts = (int(unlabeled.sum()), int((unlabeled & positive).sum()),
                       int((unlabeled & ~positive).sum()))
    if unlabeled is not None:
        pool_path(out_dir).write_text(json.dumps(pool))
    summary = []
    for p, mask in masks.items():
        lab_path, unl_path = paths[p]
        lab_path.write_text(json.dumps(_subset(coco, mask, True)))
        if unlabeled is None:
            unl_path.write_text(json.dumps(_subset(coco, ~mask, False)))
            counts = (int((~mask).sum()), int((~mask & positive).sum()),
                      int((~mask & ~positive).sum()))
        else:
            counts = pool_counts
        summary.append(dict(
            percent=p, labeled=lab_path, unlabeled=unl_path,
            labeled_images=int(mask.sum()),
            labeled_positive=int((mask & positive).sum()),
            labeled_negative=int((mask & ~positive).sum()),
            labeled_boxes=int(box_count[mask].sum()),
            unlabeled_images=counts[0],
            unlabeled_positive=counts[1],
            unlabeled_negative=counts[2]))
    return summary


def _check_separate(coco: dict, other: dict, path: Path,
                    other_path: Path) -> None:
    """A separate unlabeled file must not share an image with the train
    file (by ``file_name``, or by ``id`` when names are absent)."""
    def names(c):
        return {im.get('file_name', f'id:{im["id"]}') for im in c['images']}
    shared = sorted(names(coco) & names(other))
    if shared:
        raise CocoSplitError(
            f'{other_path}: {len(shared)} images are also in {path} (e.g. '
            f'{shared[:3]}); --unlabeled-ann must be a separate set: drop '
            'them from one of the files')


def write_semi_split(ann_file: Path, out_dir: Path,
                     percents: Sequence[float] = DEFAULT_PERCENTS,
                     protocol: str = 'pool',
                     unlabeled_percent: float = DEFAULT_UNLABELED_PERCENT,
                     unlabeled_ann: Optional[Path] = None,
                     group_by: Optional[str] = None, seed: int = 0,
                     force_overwrite: bool = False
                     ) -> Tuple[dict, List[dict]]:
    """Read, split and write a COCO train file (the whole protocol).

    Args:
        ann_file (Path): COCO train JSON.
        out_dir (Path): Folder of the outputs (:func:`output_paths`).
        percents (Sequence[float]): Labeled percentages in ``(0, 100]`` of
            the images outside the unlabeled set (duplicates dropped).
        protocol (str): ``'pool'`` (one unlabeled set for every fraction,
            the paper's) or ``'remainder'``.
        unlabeled_percent (float): Protocol ``pool``: percent of the images
            held out as the unlabeled set (:func:`split_pool`).
        unlabeled_ann (Path, optional): Protocol ``pool``: a separate COCO
            file whose images are the unlabeled set.
        group_by (str, optional): Image-entry key whose equal values stay on
            one side (:func:`image_groups`).
        seed (int): Seed of the split.
        force_overwrite (bool): Replace existing output files.

    Returns:
        tuple[dict, list[dict]]: The source COCO dict and the summary of
        :func:`write_splits`.

    Raises:
        CocoSplitError: An unreadable or inconsistent file.
        FileExistsError: Outputs exist and not ``force_overwrite``.
        ValueError: Options that do not go together.
    """
    if unlabeled_ann is not None and protocol != 'pool':
        raise ValueError('--unlabeled-ann needs --protocol pool')
    coco = load_coco(ann_file)
    groups = image_groups(coco, group_by, str(ann_file))
    percents = sorted(set(percents))
    if protocol == 'remainder':
        unlabeled = None
        masks = split_semi(coco, percents, seed, groups=groups)
    elif unlabeled_ann is not None:
        unlabeled = load_coco(unlabeled_ann)
        _check_separate(coco, unlabeled, ann_file, unlabeled_ann)
        masks = split_semi(coco, percents, seed, groups=groups)
    else:
        unlabeled = split_pool(coco, unlabeled_percent, seed, groups)
        masks = split_semi(coco, percents, seed, exclude=unlabeled,
                           groups=groups)
    summary = write_splits(coco, masks, out_dir, force_overwrite, unlabeled)
    return coco, summary


def format_summary(ann_file: Path, coco: dict, summary: List[dict],
                   seed: int, protocol: str = 'pool') -> List[str]:
    """The lines the command line prints about a split.

    Args:
        ann_file (Path): The source file.
        coco (dict): Its COCO dict.
        summary (list[dict]): From :func:`write_splits`.
        seed (int): Seed of the split.
        protocol (str): ``'pool'`` or ``'remainder'``.

    Returns:
        list[str]: One line per output (and a note per empty unlabeled set).
    """
    n = len(coco['images'])
    lines = [f'{ann_file}: {n} images, {len(coco["annotations"])} boxes, '
             f'seed {seed}, protocol {protocol}']
    if protocol == 'pool':
        s = summary[0]
        lines.append(
            f'  unlabeled (every row) {s["unlabeled_images"]} images '
            f'({s["unlabeled_positive"]} with boxes in the source, '
            f'{s["unlabeled_negative"]} without) -> {s["unlabeled"].name}')
    for s in summary:
        line = (f'  {_pct_name(s["percent"]):>5}%  labeled '
                f'{s["labeled_images"]} images ({s["labeled_positive"]} with '
                f'boxes, {s["labeled_negative"]} without; '
                f'{s["labeled_boxes"]} boxes) -> {s["labeled"].name}')
        if protocol == 'remainder':
            line += (f' | unlabeled {s["unlabeled_images"]} '
                     f'({s["unlabeled_positive"]} with boxes, '
                     f'{s["unlabeled_negative"]} without) -> '
                     f'{s["unlabeled"].name}')
        lines.append(line)
        if s['unlabeled_images'] == 0:
            lines.append(f'         {s["unlabeled"].name} holds no image (fully '
                         'supervised baseline; do not give it to a '
                         'semi-supervised config)')
    return lines


__all__ = ['CocoSplitError', 'DEFAULT_PERCENTS', 'DEFAULT_UNLABELED_PERCENT',
           'PROTOCOLS', 'LABEL_IMAGE_KEYS', 'load_coco', 'image_groups',
           'split_pool', 'split_semi', 'output_paths', 'pool_path',
           'write_splits', 'write_semi_split', 'format_summary']
