"""Proposals of every image of a COCO file, their file format and recall.

The file is a pickle that ``proposal_file`` of mmdet's ``BaseDetDataset``
(and :class:`cervdet.datasets.WeakCocoDataset`) reads::

    {'<image folder name>/<file name>':            # see proposal_key()
         {'bboxes': float32 [N, 4] (x1, y1, x2, y2, original pixels),
          'scores': float32 [N] (descending; objectness + 3 - tier)},
     ...}                                          # one entry per image
"""
import json
import os.path as osp
import pickle
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

# One IoU for the proposal recall and CorLoc.
from cervdet.evaluation.metrics.corloc_metric import box_iou

from .generator import ProposalConfig, generate_proposals

SPLITS: Tuple[str, ...] = ('train', 'val', 'test')


def proposal_key(img_path: str) -> str:
    """Key of an image in a proposal file, as mmdet 3.3 looks it up.

    ``BaseDetDataset.load_proposals`` uses the last folder of ``img_path``
    and the file name: ``data/mosaic/images/train/a.jpg`` -> ``'train/a.jpg'``
    (:func:`generate_for_coco` writes these keys).

    Args:
        img_path (str): Path of the image.

    Returns:
        str: ``'<folder name>/<file name>'``.
    """
    folder, name = osp.split(str(img_path))
    return osp.join(osp.split(folder)[-1], name)


def best_overlaps(proposals: Sequence[np.ndarray],
                  gt_boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Best IoU of every ground-truth box with any proposal of its image.

    Args:
        proposals (Sequence[np.ndarray]): Per image ``[N_i, 4]`` xyxy.
        gt_boxes (Sequence[np.ndarray]): Per image ``[M_i, 4]`` xyxy.

    Returns:
        np.ndarray: float64 ``[sum M_i]`` (0 for boxes of an image without
        proposals).
    """
    if len(proposals) != len(gt_boxes):
        raise ValueError(f'{len(proposals)} proposal sets for '
                         f'{len(gt_boxes)} images of ground truth')
    best = []
    for props, gts in zip(proposals, gt_boxes):
        gts = np.asarray(gts, np.float64).reshape(-1, 4)
        if len(gts) == 0:
            continue
        ious = box_iou(gts, props)
        best.append(ious.max(axis=1) if ious.shape[1] else
                    np.zeros(len(gts)))
    return np.concatenate(best) if best else np.zeros(0)


def proposal_recall(proposals: Sequence[np.ndarray],
                    gt_boxes: Sequence[np.ndarray],
                    iou_thrs: Sequence[float] = (0.5, 0.7)) -> np.ndarray:
    """Share of ground-truth boxes covered by a proposal at each IoU.

    A ground-truth box is recalled at ``t`` when some proposal of its image
    has IoU >= ``t`` with it.

    Args:
        proposals (Sequence[np.ndarray]): Per image ``[N_i, 4]`` xyxy.
        gt_boxes (Sequence[np.ndarray]): Per image ``[M_i, 4]`` xyxy.
        iou_thrs (Sequence[float]): IoU thresholds.

    Returns:
        np.ndarray: float64 ``[len(iou_thrs)]`` recalls in [0, 1]; ``nan``
        when there is no ground-truth box at all.
    """
    best = best_overlaps(proposals, gt_boxes)
    thrs = np.asarray(iou_thrs, np.float64).reshape(-1)
    if best.size == 0:
        return np.full(len(thrs), np.nan)
    return (best[None] >= thrs[:, None]).mean(axis=1)


# ----------------------------------------------------------------------------
# COCO sets and files
# ----------------------------------------------------------------------------
def load_coco_images(ann_file: Path, img_dir: Path, file_suffix: str = ''
                     ) -> List[Tuple[str, np.ndarray]]:
    """Images of a COCO file with their ground-truth boxes.

    Args:
        ann_file (Path): COCO detection JSON.
        img_dir (Path): Folder ``file_name`` is relative to.
        file_suffix (str): Appended to file names that lack it.

    Returns:
        list[tuple[str, np.ndarray]]: ``(image path, float32 [M, 4] xyxy
        boxes of non-crowd annotations)`` in file order.
    """
    try:
        coco = json.loads(Path(ann_file).read_text())
        images = coco['images']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{ann_file}: not a readable COCO file ({e}); check '
                         'it with tools/dataset_converters/check_coco.py')
    boxes: Dict = {}
    for a in coco.get('annotations', []):
        if not a.get('iscrowd', 0):
            boxes.setdefault(a['image_id'], []).append(a['bbox'])
    out = []
    for img in images:
        name = img['file_name']
        if file_suffix and not name.endswith(file_suffix):
            name += file_suffix
        b = np.asarray(boxes.get(img['id'], []), np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        out.append((osp.join(str(img_dir), name), b))
    return out


def _proposals_of_file(args: Tuple[str, ProposalConfig]
                       ) -> Tuple[str, np.ndarray, np.ndarray, float]:
    path, cfg = args
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(
            f'{path}: missing or not an image; check --img-dir / '
            '--file-suffix (tools/dataset_converters/check_coco.py lists '
            'all such files)')
    t0 = time.perf_counter()
    bboxes, scores = generate_proposals(img, cfg)
    return path, bboxes, scores, time.perf_counter() - t0


def generate_for_coco(ann_file: Path, img_dir: Path, out: Optional[Path],
                      cfg: ProposalConfig = ProposalConfig(),
                      file_suffix: str = '', workers: int = 1,
                      progress: bool = True, desc: str = 'proposals'
                      ) -> Dict:
    """Proposals of every image of a COCO file, written as a pickle.

    Args:
        ann_file (Path): COCO detection JSON.
        img_dir (Path): Its image folder.
        out (Path | None): Output ``.pkl`` (``None``: not written).
        cfg (ProposalConfig): Generator settings.
        file_suffix (str): Appended to file names that lack it.
        workers (int): Processes (1: in this process).
        progress (bool): Show a progress bar.
        desc (str): Progress bar label.

    Returns:
        dict: ``proposals`` (the dict written), ``recall`` ({IoU: recall}),
        ``images``, ``gt_boxes``, ``mean_proposals``, ``sec_per_img``
        (generation only, image decoding excluded).

    Raises:
        ValueError: When two images share a key (same folder name and file
            name): mmdet could not tell their proposals apart.
    """
    items = load_coco_images(ann_file, img_dir, file_suffix)
    keys = [proposal_key(p) for p, _ in items]
    if len(set(keys)) != len(keys):
        dup = sorted(k for k, n in Counter(keys).items() if n > 1)[:3]
        raise ValueError(
            f'{ann_file}: images share the proposal key {dup} (folder name + '
            'file name, the key mmdet matches proposals by); rename them')
    jobs = [(p, cfg) for p, _ in items]
    bar = tqdm(total=len(jobs), unit='img', desc=desc, disable=not progress)
    results = []
    if workers > 1:
        with Pool(workers) as pool:
            for r in pool.imap(_proposals_of_file, jobs, chunksize=4):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(_proposals_of_file(job))
            bar.update()
    bar.close()
    proposals = {k: dict(bboxes=b, scores=s)
                 for k, (_, b, s, _) in zip(keys, results)}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, 'wb') as f:
            pickle.dump(proposals, f, protocol=4)
    thrs = (0.5, 0.7)
    rec = proposal_recall([r[1] for r in results], [b for _, b in items],
                          thrs)
    n = max(1, len(results))
    return dict(proposals=proposals, recall=dict(zip(thrs, rec.tolist())),
                images=len(results),
                gt_boxes=int(sum(len(b) for _, b in items)),
                mean_proposals=sum(len(r[1]) for r in results) / n,
                sec_per_img=sum(r[3] for r in results) / n)


def format_stats(name: str, stats: Dict) -> str:
    """One line of recall statistics."""
    rec = stats['recall']
    return (f'{name}: {stats["images"]} images, {stats["gt_boxes"]} gt boxes, '
            f'{stats["mean_proposals"]:.0f} proposals/img, '
            f'recall@0.5 {rec[0.5]:.3f}, recall@0.7 {rec[0.7]:.3f}, '
            f'{stats["sec_per_img"]:.3f} s/img')


def split_jobs(data_root: Path, splits: Optional[Sequence[str]] = None,
               out_dir: Optional[Path] = None
               ) -> List[Tuple[str, Path, Path, Path]]:
    """The COCO files of a data root and where their proposals go.

    Args:
        data_root (Path): Folder with ``annotations/<split>.json`` and
            ``images/<split>/``.
        splits (Sequence[str], optional): Splits to do (default: those of
            :data:`SPLITS` whose annotation file exists).
        out_dir (Path, optional): Folder of ``<split>.pkl`` (default:
            ``<data_root>/proposals``).

    Returns:
        list[tuple]: ``(split, annotation file, image folder, output .pkl)``
        per split (empty when no annotation file exists).
    """
    root = Path(data_root)
    out_dir = Path(out_dir) if out_dir else root / 'proposals'
    splits = splits or [
        s for s in SPLITS if (root / 'annotations' / f'{s}.json').is_file()]
    return [(s, root / 'annotations' / f'{s}.json', root / 'images' / s,
             out_dir / f'{s}.pkl') for s in splits]


__all__ = ['SPLITS', 'proposal_key', 'best_overlaps', 'proposal_recall',
           'load_coco_images', 'generate_for_coco', 'format_stats',
           'split_jobs']
