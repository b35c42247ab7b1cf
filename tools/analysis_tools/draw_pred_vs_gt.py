"""Draw a test image's ground truth (left) next to its predictions (right).

Usage:
    python tools/analysis_tools/draw_pred_vs_gt.py CONFIG PREDICTIONS.pkl \
        --out-file pred_vs_gt.png [--img-id ID] [--score-thr 0.3]

PREDICTIONS.pkl is what ``tools/test.py --out`` writes. Without ``--img-id``
the test image with the most ground-truth boxes is drawn.
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
        pred_score_thr=args.score_thr,
        out_file=args.out_file)
    print(f'{args.out_file}: {osp.basename(info["img_path"])}, '
          f'{len(inst)} ground-truth boxes (left), '
          f'{int((p.scores >= args.score_thr).sum())} predictions with '
          f'score >= {args.score_thr} (right)')


if __name__ == '__main__':
    main()
