"""Split a COCO training file into labeled fractions and unlabeled remainders
for semi-supervised detection (Chai et al., ISBI 2022: 25/50/75/100 %
labeled).

For each percentage ``p`` writes, into ``--out-dir``:

- ``train_labeled_<p>.json``: the labeled images with all their annotations
  (a full COCO file: other top-level keys and ``categories`` kept);
- ``train_unlabeled_<p>.json``: the other images, ``annotations: []`` (the
  ``categories`` kept so that mmdet's ``CocoDataset`` resolves its classes).

The split is

- disjoint and complete: labeled + unlabeled = all images, per fraction;
- stratified: images with boxes (positives) and without (negatives) are split
  separately, ``round(p * n)`` of each (half up; at least one positive when
  ``p > 0`` and there are positives);
- nested: each stratum is permuted once with ``--seed`` and every fraction
  takes a prefix, so a smaller labeled set is a subset of a larger one;
- reproducible: same file + seed -> same split; images keep the file's order.

Use with mmdet's semi-supervised base
(``configs/_base_/datasets/semi_coco_detection.py``)::

    labeled_dataset = dict(ann_file='annotations/semi/train_labeled_25.json',
                           data_prefix=dict(img='images/train/'))
    unlabeled_dataset = dict(
        ann_file='annotations/semi/train_unlabeled_25.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=False))  # as the base sets

Example::

    python tools/dataset_converters/split_semi.py \\
        data/mosaic/annotations/train.json \\
        --out-dir data/mosaic/annotations/semi --seed 0
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['CocoSplitError', 'load_coco', 'split_semi', 'output_paths',
           'write_splits', 'parse_args', 'main']

DEFAULT_PERCENTS = (25., 50., 75., 100.)


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


def _num_labeled(n: int, fraction: float, at_least_one: bool) -> int:
    """``round(fraction * n)`` half up, in ``[0, n]`` (>= 1 on request)."""
    k = min(n, int(math.floor(fraction * n + 0.5)))
    if at_least_one and fraction > 0 and n > 0:
        k = max(k, 1)
    return k


def split_semi(coco: dict, percents: Sequence[float] = DEFAULT_PERCENTS,
               seed: int = 0) -> Dict[float, np.ndarray]:
    """Nested stratified labeled masks of the images of ``coco``.

    Args:
        coco (dict): COCO dict (``images``, ``annotations``).
        percents (Sequence[float]): labeled percentages in ``(0, 100]``.
        seed (int): seed of the permutations.

    Returns:
        dict[float, np.ndarray]: percentage -> bool ``[num_images]``, True
        for labeled images (in the order of ``coco['images']``).
    """
    percents = [float(p) for p in percents]
    bad = [p for p in percents if not 0. < p <= 100.]
    if bad or not percents:
        raise ValueError(f'percents must be in (0, 100], got {percents}')
    num = len(coco['images'])
    positive = np.bincount(_ann_image_index(coco), minlength=num) > 0
    rng = np.random.default_rng(seed)
    # rank of every image inside its stratum after one permutation per
    # stratum: the labeled set of p is {rank < k(p)}, hence nested
    rank = np.empty(num, np.int64)
    strata = []
    for is_pos in (True, False):
        members = np.flatnonzero(positive == is_pos)
        rank[members[rng.permutation(len(members))]] = np.arange(len(members))
        strata.append((members, is_pos))
    masks = {}
    for p in percents:
        mask = np.zeros(num, bool)
        for members, is_pos in strata:
            k = _num_labeled(len(members), p / 100., at_least_one=is_pos)
            mask[members] = rank[members] < k
        masks[p] = mask
    return masks


def _pct_name(p: float) -> str:
    """File-name form of a percentage: ``25``, ``12.5``."""
    return f'{p:g}'


def output_paths(out_dir: Path, p: float) -> Tuple[Path, Path]:
    """Labeled and unlabeled output files of percentage ``p``.

    ``(out_dir/train_labeled_<p>.json, out_dir/train_unlabeled_<p>.json)``.
    """
    name = _pct_name(p)
    return (Path(out_dir) / f'train_labeled_{name}.json',
            Path(out_dir) / f'train_unlabeled_{name}.json')


def _subset(coco: dict, keep: np.ndarray, with_anns: bool) -> dict:
    """COCO dict of the images where ``keep``; annotations of those images
    when ``with_anns`` else ``[]``; other top-level keys as they are."""
    images = [im for im, k in zip(coco['images'], keep) if k]
    out = {k: v for k, v in coco.items() if k not in ('images', 'annotations')}
    out['images'] = images
    if with_anns:
        sel = keep[_ann_image_index(coco)]
        out['annotations'] = [a for a, s in zip(coco['annotations'], sel)
                              if s]
    else:
        out['annotations'] = []
    return out


def write_splits(coco: dict, masks: Dict[float, np.ndarray], out_dir: Path,
                 force_overwrite: bool = False) -> List[dict]:
    """Write the labeled / unlabeled files of every fraction.

    Args:
        coco (dict): the source COCO dict.
        masks (dict[float, np.ndarray]): from :func:`split_semi`.
        out_dir (Path): output folder (created).
        force_overwrite (bool): replace existing outputs.

    Returns:
        list[dict]: per fraction ``percent``, ``labeled`` / ``unlabeled``
        (paths) and counts ``labeled_images``, ``labeled_positive``,
        ``labeled_negative``, ``labeled_boxes``, ``unlabeled_images``,
        ``unlabeled_positive``, ``unlabeled_negative``.

    Raises:
        FileExistsError: outputs exist and not ``force_overwrite`` (nothing
            is written then).
    """
    out_dir = Path(out_dir)
    paths = {p: output_paths(out_dir, p) for p in masks}
    existing = [str(f) for pair in paths.values() for f in pair if f.exists()]
    if existing and not force_overwrite:
        raise FileExistsError(
            f'{len(existing)} output files exist ({", ".join(existing[:4])}'
            f'{", ..." if len(existing) > 4 else ""}); pass --force-overwrite '
            'to replace them or choose another --out-dir')
    out_dir.mkdir(parents=True, exist_ok=True)
    box_count = np.bincount(_ann_image_index(coco),
                            minlength=len(coco['images']))
    positive = box_count > 0
    summary = []
    for p, mask in masks.items():
        lab_path, unl_path = paths[p]
        lab_path.write_text(json.dumps(_subset(coco, mask, True)))
        unl_path.write_text(json.dumps(_subset(coco, ~mask, False)))
        summary.append(dict(
            percent=p, labeled=lab_path, unlabeled=unl_path,
            labeled_images=int(mask.sum()),
            labeled_positive=int((mask & positive).sum()),
            labeled_negative=int((mask & ~positive).sum()),
            labeled_boxes=int(box_count[mask].sum()),
            unlabeled_images=int((~mask).sum()),
            unlabeled_positive=int((~mask & positive).sum()),
            unlabeled_negative=int((~mask & ~positive).sum())))
    return summary


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description='Split a COCO train file into nested, stratified labeled '
                    'fractions and unlabeled remainders',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('ann_file', type=Path, help='COCO train JSON')
    p.add_argument('--out-dir', type=Path, required=True,
                   help='folder of train_labeled_<p>.json / '
                        'train_unlabeled_<p>.json')
    p.add_argument('--percents', type=float, nargs='+',
                   default=list(DEFAULT_PERCENTS),
                   help='labeled percentages in (0, 100]')
    p.add_argument('--seed', type=int, default=0, help='seed of the split')
    p.add_argument('--force-overwrite', action='store_true',
                   help='replace existing output files')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; returns 0 on success, 1 on errors."""
    args = parse_args(argv)
    try:
        coco = load_coco(args.ann_file)
        masks = split_semi(coco, sorted(set(args.percents)), args.seed)
        summary = write_splits(coco, masks, args.out_dir,
                               args.force_overwrite)
    except (CocoSplitError, FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    n = len(coco['images'])
    print(f'{args.ann_file}: {n} images, {len(coco["annotations"])} boxes, '
          f'seed {args.seed}')
    for s in summary:
        print(f'  {_pct_name(s["percent"]):>5}%  labeled {s["labeled_images"]}'
              f' images ({s["labeled_positive"]} with boxes, '
              f'{s["labeled_negative"]} without; {s["labeled_boxes"]} boxes)'
              f' -> {s["labeled"].name} | unlabeled {s["unlabeled_images"]}'
              f' ({s["unlabeled_positive"]} with boxes, '
              f'{s["unlabeled_negative"]} without) -> {s["unlabeled"].name}')
        if s['unlabeled_images'] == 0:
            print(f'         {s["unlabeled"].name} holds no image (fully '
                  'supervised baseline; do not give it to a semi-supervised '
                  'config)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
