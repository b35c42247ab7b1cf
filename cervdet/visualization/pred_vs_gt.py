"""Draw a test image's ground truth (left) next to its predictions (right).

The picture of ``tools/analysis_tools/draw_pred_vs_gt.py``: mmdet's
``DetLocalVisualizer`` with ``draw_gt`` and ``draw_pred``. On
point-annotated sets (CRIC, ``tools/dataset_converters/cric_to_coco.py``)
the marked nuclei are drawn on both halves: a dot in the class colour for
each boxed cell, a small green ring for each marked cell of a background
class (NILM), so a prediction can be checked against the cells the
pathologists marked.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence

import cv2
import mmcv
import numpy as np
import torch
from mmdet.registry import DATASETS, VISUALIZERS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData


def draw_marked_points(drawn: np.ndarray, ann_file: str, img_id: int,
                       width: int, palette: Optional[Sequence]) -> int:
    """Draw the annotation file's marked nuclei on both halves (in place).

    Args:
        drawn (np.ndarray[H, 2W, 3]): RGB side-by-side picture.
        ann_file (str): COCO file whose annotations may hold a ``point``
            and whose images may hold ``other_points``.
        img_id (int): The drawn image.
        width (int): ``W``, the width of one half.
        palette (Sequence, optional): Class colours (RGB) by category
            index.

    Returns:
        int: How many points were drawn (0: no points in the file).
    """
    with open(ann_file) as f:
        coco = json.load(f)
    cat_index = {c['id']: i for i, c in enumerate(coco['categories'])}
    image = next(im for im in coco['images'] if im['id'] == img_id)
    points = [(a['point'], palette[cat_index[a['category_id']]]
               if palette else (255, 0, 0))
              for a in coco['annotations']
              if a['image_id'] == img_id and 'point' in a]
    others = [p['point'] for p in image.get('other_points', [])]
    for offset in (0, width):
        for (x, y), colour in points:
            c = (int(round(x)) + offset, int(round(y)))
            cv2.circle(drawn, c, 5, (255, 255, 255), -1)
            cv2.circle(drawn, c, 4, tuple(int(v) for v in colour), -1)
        for x, y in others:
            cv2.circle(drawn, (int(round(x)) + offset, int(round(y))), 4,
                       (0, 160, 0), 2)
    return len(points) + len(others)


def draw_pred_vs_gt(cfg, preds: Sequence[Dict], img_id: Optional[int] = None,
                    score_thr: float = 0.3) -> Dict:
    """Ground truth (left) and predictions (right) of one test image.

    Args:
        cfg (Config): The detector config (its ``test_dataloader`` dataset;
            the default scope set).
        preds (Sequence[dict]): What ``tools/test.py --out`` writes
            (``img_id`` and ``pred_instances`` per image).
        img_id (int, optional): The image; default: the one with the most
            ground-truth boxes.
        score_thr (float): Lowest drawn prediction score.

    Returns:
        dict: ``image`` (np.ndarray[H, 2W, 3] RGB), ``img_path``,
        ``num_gt``, ``num_pred`` (score >= ``score_thr``) and
        ``num_points`` (marked nuclei drawn).

    Raises:
        ValueError: ``img_id`` is not in ``preds``.
    """
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    by_id = {dataset.get_data_info(i)['img_id']: dataset.get_data_info(i)
             for i in range(len(dataset))}
    if img_id is None:
        pred = max(preds,
                   key=lambda p: len(by_id[p['img_id']]['instances']))
    else:
        pred = next((p for p in preds if p['img_id'] == img_id), None)
        if pred is None:
            raise ValueError(f'--img-id {img_id} is not in the predictions')
    info = by_id[pred['img_id']]
    img = mmcv.imread(info['img_path'], channel_order='rgb')

    sample = DetDataSample()
    gt = InstanceData()
    inst = info['instances']
    gt.bboxes = torch.tensor(
        np.array([i['bbox'] for i in inst], dtype=np.float32).reshape(-1, 4))
    gt.labels = torch.tensor([i['bbox_label'] for i in inst],
                             dtype=torch.long)
    sample.gt_instances = gt
    p = InstanceData()
    for key in ('bboxes', 'scores', 'labels'):
        setattr(p, key, torch.as_tensor(pred['pred_instances'][key]))
    sample.pred_instances = p

    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='draw_pred_vs_gt'))
    visualizer.dataset_meta = dataset.metainfo
    visualizer.add_datasample(
        osp.basename(info['img_path']), img, data_sample=sample,
        draw_gt=True, draw_pred=True, show=False, pred_score_thr=score_thr)
    drawn = visualizer.get_image()
    ann_file = osp.join(ds_cfg.get('data_root', '') or '', ds_cfg.ann_file)
    n_points = draw_marked_points(drawn, ann_file, pred['img_id'],
                                  img.shape[1],
                                  dataset.metainfo.get('palette'))
    return dict(image=drawn, img_path=info['img_path'], num_gt=len(inst),
                num_pred=int((p.scores >= score_thr).sum()),
                num_points=n_points)


__all__ = ['draw_pred_vs_gt', 'draw_marked_points']
