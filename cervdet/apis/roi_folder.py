"""ROI classification of a list of image files: the per-ROI loop of
``tools/roi_cls/infer_rois.py``.

:func:`infer_roi_images` runs a :class:`~cervdet.apis.ROIInferencer` over
the images one by one and writes, below ``out_dir``::

    rois/<stem>.json    # one per ROI: the result row
    vis/<stem>.jpg      # cells coloured by attention (with pictures=True)

A row is the inferencer's result (``roi_class``, ``roi_scores``, ``cells``
with ``bbox``, ``attention``, ``det_score``, ``cell_class``...) plus
``stem`` and, with cell boxes from an annotation file, ``gt_roi_class`` and
the cells' ``gt_cell_class``; an image that cannot be processed (missing,
corrupt, not in the annotation file) gets ``roi_class`` None and an
``error`` and the others go on. :func:`summarize_roi_results` counts the
rows for ``results.json``'s ``run``.

Usage::

    from cervdet.apis import ROIInferencer, infer_roi_images
    inferencer = ROIInferencer(roi_config, roi_checkpoint,
                               det_config=..., det_checkpoint=...)
    rows = infer_roi_images(inferencer, ['a.jpg', 'b.jpg'], 'work_dirs/out')
"""
import os
import os.path as osp
import traceback
from collections import Counter
from typing import Dict, List, Optional, Sequence

from tqdm import tqdm

from cervdet.utils.image_files import unique_stems
from cervdet.utils.json_files import atomic_json

from .roi_inference import ROIInferencer


def _infer_one(inferencer: ROIInferencer, path: str, stem: str,
               out_dir: str, input_root: Optional[str],
               boxes_of: Optional[Dict[str, dict]], ann_file: Optional[str],
               pictures: bool, max_label_cells: int) -> dict:
    """The result row of one image (an ``error`` instead of raising)."""
    import cv2
    import mmcv

    from cervdet.visualization import draw_roi

    res = dict(img_path=path, stem=stem)
    try:
        img = mmcv.imread(path, channel_order='bgr')
        if img is None:
            raise ValueError('cannot read the image (corrupt or not an '
                             'image)')
        boxes, gt = None, None
        if boxes_of is not None:
            root = input_root if input_root is not None else \
                osp.dirname(path)
            rel = osp.relpath(path, root).replace(os.sep, '/')
            gt = boxes_of.get(rel) or boxes_of.get(osp.basename(path))
            if gt is None:
                raise ValueError(f'no entry in --ann-file {ann_file}'
                                 f' for {osp.basename(path)}')
            boxes = gt['boxes']
        out = inferencer(img, boxes=boxes)
        out['img_path'] = path
        res.update(out)
        if gt is not None:
            res['gt_roi_class'] = gt.get('roi_label')
            if len(gt['cell_classes']) == len(res['cells']):
                for c, name in zip(res['cells'], gt['cell_classes']):
                    c['gt_cell_class'] = name
        if pictures:
            pic = draw_roi(img, res, inferencer.classes,
                           max_label_cells=max_label_cells)
            vis = osp.join(out_dir, 'vis', f'{stem}.jpg')
            if not cv2.imwrite(vis, pic):
                raise IOError(f'cannot write {vis}')
            res['vis_path'] = vis
    except Exception as e:  # report and go on with the other ROIs
        res.update(roi_class=None, error=f'{type(e).__name__}: {e}')
        if os.environ.get('CERVDET_DEBUG'):
            traceback.print_exc()
    return res


def infer_roi_images(inferencer: ROIInferencer,
                     images: Sequence[str],
                     out_dir: str,
                     input_root: Optional[str] = None,
                     boxes_of: Optional[Dict[str, dict]] = None,
                     ann_file: Optional[str] = None,
                     pictures: bool = True,
                     max_label_cells: int = 20,
                     progress: bool = True) -> List[dict]:
    """Classify ROI image files one by one and write their rows.

    Args:
        inferencer (ROIInferencer): The ROI classifier (and detector).
        images (Sequence[str]): Image files; each gets the stem of
            :func:`~cervdet.utils.image_files.unique_stems`.
        out_dir (str): Output folder: ``rois/<stem>.json`` per image and,
            with ``pictures``, ``vis/<stem>.jpg`` (folders created).
        input_root (str, optional): Folder the images are looked up from in
            ``boxes_of`` (their path relative to it, then their base name);
            None: each image's own folder (the base name).
        boxes_of (dict, optional): Cell boxes per image
            (:func:`~cervdet.apis.load_coco_boxes`); None: the inferencer's
            detector finds the cells.
        ann_file (str, optional): The annotation file ``boxes_of`` came
            from (named in the error of an image it lacks).
        pictures (bool): Write ``vis/<stem>.jpg``
            (:func:`~cervdet.visualization.draw_roi`). Defaults to True.
        max_label_cells (int): Cells tagged with their class in the
            pictures. Defaults to 20.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        list[dict]: One row per image, in the order of ``images`` (see the
        module docstring; ``vis_path`` where a picture was written).
    """
    os.makedirs(osp.join(out_dir, 'rois'), exist_ok=True)
    if pictures:
        os.makedirs(osp.join(out_dir, 'vis'), exist_ok=True)
    results = []
    stems = unique_stems(images)
    for path, stem in tqdm(list(zip(images, stems)), unit='roi',
                           desc='ROIs', disable=not progress):
        res = _infer_one(inferencer, path, stem, out_dir, input_root,
                         boxes_of, ann_file, pictures, max_label_cells)
        atomic_json(osp.join(out_dir, 'rois', f'{stem}.json'), res, indent=1)
        results.append(res)
    return results


def summarize_roi_results(results: Sequence[dict], classes: Sequence[str],
                          seconds: float) -> dict:
    """Counts of the rows of :func:`infer_roi_images`.

    Args:
        results (Sequence[dict]): The rows.
        classes (Sequence[str]): ROI classes (every one gets a count).
        seconds (float): Time the rows took (> 0).

    Returns:
        dict: ``num_rois``, ``num_classified`` (rows with a ``roi_class``),
        ``num_errors``, ``num_without_cells`` (neither), ``class_counts``
        ``{class: rows}``, ``seconds`` and ``rois_per_second`` (both rounded
        to 3 decimals).
    """
    done = [r for r in results if r.get('roi_class') is not None]
    errors = [r for r in results if r.get('error')]
    counts = Counter(r['roi_class'] for r in done)
    return dict(
        num_rois=len(results), num_classified=len(done),
        num_errors=len(errors),
        num_without_cells=len(results) - len(done) - len(errors),
        class_counts={c: counts.get(c, 0) for c in classes},
        seconds=round(seconds, 3),
        rois_per_second=round(len(results) / seconds, 3))


__all__ = ['infer_roi_images', 'summarize_roi_results']
