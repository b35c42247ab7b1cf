"""Draw a test image's ground truth (left) next to its predictions (right).

Usage:
    python tools/analysis_tools/draw_pred_vs_gt.py CONFIG PREDICTIONS.pkl \
        --out-file pred_vs_gt.png [--img-id ID] [--score-thr 0.3]

PREDICTIONS.pkl is what ``tools/test.py --out`` writes. Without ``--img-id``
the test image with the most ground-truth boxes is drawn. On point-annotated
sets (CRIC, ``tools/dataset_converters/cric_to_coco.py``) the marked nuclei
are drawn on both halves: a dot in the class colour for each boxed cell, a
small green ring for each marked cell of a background class (NILM), so a
prediction can be checked against the cells the pathologists marked.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('predictions', help='.pkl from tools/test.py --out')
    parser.add_argument('--out-file', required=True)
    parser.add_argument('--img-id', type=int, default=None)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--force-overwrite', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if osp.exists(args.out_file) and not args.force_overwrite:
        sys.exit(f'{args.out_file} exists: choose another --out-file or '
                 'pass --force-overwrite.')
    import mmcv
    import numpy as np
    import torch
    from mmengine.fileio import load
    from mmengine.structures import InstanceData
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.structures import DetDataSample

    from mmengine.registry import init_default_scope

    from cervdet.utils.launch import load_config

    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    preds = load(args.predictions)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.pipeline = []
    dataset = DATASETS.build(ds_cfg)
    by_id = {dataset.get_data_info(i)['img_id']: dataset.get_data_info(i)
             for i in range(len(dataset))}
    if args.img_id is None:
        pred = max(preds,
                   key=lambda p: len(by_id[p['img_id']]['instances']))
    else:
        pred = next((p for p in preds if p['img_id'] == args.img_id), None)
        if pred is None:
            sys.exit(f'--img-id {args.img_id} is not in {args.predictions}')
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
        osp.basename(info['img_path']),
        img,
        data_sample=sample,
        draw_gt=True,
        draw_pred=True,
        show=False,
        pred_score_thr=args.score_thr)
    drawn = visualizer.get_image()
    n_points = _draw_marked_points(drawn, cfg.test_dataloader.dataset,
                                   pred['img_id'], img.shape[1],
                                   dataset.metainfo.get('palette'))
    mmcv.imwrite(drawn[..., ::-1], args.out_file)
    if n_points:
        print(f'{n_points} marked nuclei drawn as dots on both halves')
    print(f'{args.out_file}: {osp.basename(info["img_path"])}, '
          f'{len(inst)} ground-truth boxes (left), '
          f'{int((p.scores >= args.score_thr).sum())} predictions with '
          f'score >= {args.score_thr} (right)')


def _draw_marked_points(drawn, ds_cfg, img_id: int, width: int,
                        palette) -> int:
    """Draw the annotation file's marked nuclei (``point`` of each box,
    ``other_points`` of the image) on both halves of ``drawn`` (RGB, in
    place). Returns how many points were drawn (0: no points in the file)."""
    import json

    import cv2
    ann_file = osp.join(ds_cfg.get('data_root', '') or '', ds_cfg.ann_file)
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


if __name__ == '__main__':
    main()
