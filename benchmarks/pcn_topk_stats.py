"""What the PCN tells a detector about its top-K boxes (Fei et al. stage 3).

For every field of a split, the detector's top-K boxes are selected as in a
stage-3 training step (``PCNRetinaNet.select_boxes``: score > 0.05,
class-wise NMS 0.5, the K best; here on the test-time input, no flip), cut
out and scored by the frozen PCN exactly as in training. Each box is a true
positive when the centre of a ground-truth abnormal box (the marked nucleus
of the CRIC fields) lies inside it, as in the point metric. Prints, over all
boxes of the split:

- how many boxes per field and the fraction of true positives;
- the mean detector score ``s_d`` and PCN score ``s_c`` of true and false
  positives, and the ROC-AUC of each score separating them (does the
  teacher rank the detector's own proposals better than the detector?);
- the fraction of boxes whose ranking term ``max(0, s_c - s_d + margin)``
  (Eq. 2) is non-zero, among true and among false positives.

Usage::

    python benchmarks/pcn_topk_stats.py CONFIG DETECTOR.pth \\
        --pcn-checkpoint PCN.pth [--split train] [--out stats.json]

with CONFIG e.g. ``configs/pcn_retinanet/``
``pcn-retinanet_r18-w32_fpn_rank-rcc_ft-adam-2e_1xb4_cric-cervix-512.py``.
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np
import torch

ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, ROOT)


def roc_auc(pos, neg):
    """Probability that a positive outranks a negative (ties count half)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a stage-3 (PCNRetinaNet) config')
    p.add_argument('checkpoint', help='the detector checkpoint')
    p.add_argument('--pcn-checkpoint', required=True)
    p.add_argument('--split', default='train')
    p.add_argument('--max-fields', type=int, default=None)
    p.add_argument('--out', default=None, help='write the numbers as json')
    args = p.parse_args(argv)

    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import cervdet  # noqa: F401

    init_default_scope('mmdet')
    cfg = Config.fromfile(args.config)
    cfg.model.pcn_checkpoint = args.pcn_checkpoint
    model = MODELS.build(cfg.model)
    model.init_weights()  # loads the PCN
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    logger='silent')
    model.eval()
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.ann_file = f'annotations/{args.split}.json'
    ds_cfg.test_mode = True
    dataset = DATASETS.build(ds_cfg)
    margin = 0.05
    if cfg.model.get('loss_rank'):
        margin = cfg.model.loss_rank.get('margin', margin)
    boxes, tp, s_d, s_c = [], [], [], []
    n = len(dataset) if args.max_fields is None else min(
        args.max_fields, len(dataset))
    with torch.no_grad():
        for i in range(n):
            data = model.data_preprocessor(pseudo_collate([dataset[i]]),
                                           False)
            inputs, samples = data['inputs'], data['data_samples']
            metas = [s.metainfo for s in samples]
            x = model.extract_feat(inputs)
            cls_scores, bbox_preds = model.bbox_head(x)
            sel, logits = model.select_boxes(cls_scores, bbox_preds, metas)
            rois = sel['rois']
            boxes.append(len(rois))
            if len(rois) == 0:
                continue
            det = logits[sel['batch_idx'], sel['prior_idx'],
                         sel['labels']].sigmoid()
            probs, _ = model.pcn_forward(model.pcn_inputs(inputs, rois))
            pcn = model.refined_scores(probs, sel['labels'])
            gt = samples[0].gt_instances.bboxes
            gt = gt.tensor if hasattr(gt, 'tensor') else gt
            # the test pipeline loads the boxes after Resize: original px
            sx, sy = metas[0]['scale_factor']
            ctr = (gt[:, :2] + gt[:, 2:]) / 2 * gt.new_tensor([sx, sy])
            b = rois[:, 1:]
            inside = ((ctr[None, :, 0] >= b[:, None, 0])
                      & (ctr[None, :, 0] <= b[:, None, 2])
                      & (ctr[None, :, 1] >= b[:, None, 1])
                      & (ctr[None, :, 1] <= b[:, None, 3]))
            tp += inside.any(1).tolist()
            s_d += det.tolist()
            s_c += pcn.tolist()
    tp, s_d, s_c = np.array(tp, bool), np.array(s_d), np.array(s_c)
    active = s_c - s_d + margin > 0
    stats = dict(
        fields=n, boxes_per_field=float(np.mean(boxes)),
        boxes=int(len(tp)), tp_fraction=float(tp.mean()),
        s_d_tp=float(s_d[tp].mean()), s_d_fp=float(s_d[~tp].mean()),
        s_c_tp=float(s_c[tp].mean()), s_c_fp=float(s_c[~tp].mean()),
        auc_detector=roc_auc(s_d[tp], s_d[~tp]),
        auc_pcn=roc_auc(s_c[tp], s_c[~tp]),
        rank_active_tp=float(active[tp].mean()),
        rank_active_fp=float(active[~tp].mean()))
    for k, v in stats.items():
        print(f'{k:16s} {v:.3f}' if isinstance(v, float) else f'{k:16s} {v}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(stats, f, indent=1)


if __name__ == '__main__':
    main()
