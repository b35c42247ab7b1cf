"""OICRHead: losses against the pure functions, gradients, inference."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmengine.structures import InstanceData

from cervdet.models.layers.oicr_pseudo_labels import (
    mil_image_scores,
    mil_loss,
    oicr_pseudo_labels,
    weighted_cross_entropy,
)
from cervdet.models.roi_heads import OICRHead

NUM_CLASSES = 2
IMG = 128


def build_head(**kwargs) -> OICRHead:
    cfg = dict(
        type='OICRHead',
        num_classes=NUM_CLASSES,
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=4, sampling_ratio=0),
            out_channels=8,
            featmap_strides=[8]),
        fc_out_channels=32,
        dropout_ratio=0.,
        num_refine_stages=3)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def rand_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (IMG - 40)
    wh = 8 + torch.rand(n, 2, generator=g) * 32
    return torch.cat([xy, xy + wh], dim=1)


def make_inputs(counts=(30, 50), gt=None, scale=1.):
    torch.manual_seed(0)
    x = (torch.randn(len(counts), 8, IMG // 8, IMG // 8, requires_grad=True), )
    proposals, samples = [], []
    for i, n in enumerate(counts):
        proposals.append(InstanceData(bboxes=rand_boxes(n, seed=i)))
        s = DetDataSample(metainfo=dict(
            img_shape=(IMG, IMG),
            ori_shape=(int(IMG / scale), int(IMG / scale)),
            scale_factor=(scale, scale)))
        boxes, labels = (gt[i] if gt is not None and gt[i] is not None else
                         (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)))
        s.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(s)
    return x, proposals, samples


def manual_losses(head, x, proposals, img_labels, gts=None):
    """Per-image OICR losses from the pure functions, averaged over images."""
    boxes = [p.bboxes for p in proposals]
    out = head(x, bbox2roi(boxes))
    counts = [b.size(0) for b in boxes]
    splits = {k: (v.split(counts) if torch.is_tensor(v) else
                  [t.split(counts) for t in v])
              for k, v in out.items() if v is not None}
    valid = [i for i, n in enumerate(counts) if n > 0]
    mil, refs = [], [[] for _ in range(head.num_refine_stages)]
    for i in valid:
        region, image = mil_image_scores(splits['mil_det_logits'][i],
                                         splits['mil_cls_logits'][i])
        mil.append(mil_loss(image, img_labels[i]))
        prev = region.detach()
        for k in range(head.num_refine_stages):
            gt = gts[i] if gts is not None and gts[i] is not None else (None,
                                                                        None)
            t = oicr_pseudo_labels(boxes[i], prev, img_labels[i],
                                   gt_bboxes=gt[0], gt_labels=gt[1])
            logits = splits['refine_logits'][k][i]
            refs[k].append(weighted_cross_entropy(logits, t.labels,
                                                  t.weights))
            prev = logits.detach().softmax(1)[:, :NUM_CLASSES]
    return (sum(mil) / len(valid), [sum(r) / len(valid) for r in refs])


def test_loss_keys_and_values_match_pure_functions():
    head = build_head()
    x, proposals, samples = make_inputs()
    img_labels = torch.tensor([[1., 0.], [1., 1.]])
    losses = head.loss(x, proposals, samples, img_labels)
    assert set(losses) == {'loss_mil', 'loss_ref1', 'loss_ref2', 'loss_ref3'}
    mil, refs = manual_losses(head, x, proposals, img_labels)
    assert losses['loss_mil'].item() == pytest.approx(mil.item(), rel=1e-5)
    for k, ref in enumerate(refs):
        assert losses[f'loss_ref{k + 1}'].item() == pytest.approx(
            ref.item(), rel=1e-5)


def test_loss_weights_scale_terms():
    x, proposals, samples = make_inputs()
    img_labels = torch.tensor([[1., 0.], [0., 1.]])
    base_head = build_head()
    base = base_head.loss(x, proposals, samples, img_labels)
    head = build_head(loss_mil_weight=2., loss_ref_weight=0.5)
    head.load_state_dict(base_head.state_dict())
    scaled = head.loss(x, proposals, samples, img_labels)
    assert scaled['loss_mil'].item() == pytest.approx(
        2 * base['loss_mil'].item(), rel=1e-5)
    assert scaled['loss_ref2'].item() == pytest.approx(
        0.5 * base['loss_ref2'].item(), rel=1e-5)


def test_gradients_reach_their_branches_only():
    head = build_head()
    x, proposals, samples = make_inputs()
    img_labels = torch.tensor([[1., 0.], [1., 1.]])
    losses = head.loss(x, proposals, samples, img_labels)

    def grad_norm(module):
        grads = [p.grad for p in module.parameters()]
        return sum(0. if g is None else g.abs().sum().item() for g in grads)

    losses['loss_mil'].backward(retain_graph=True)
    assert grad_norm(head.fc_mil_cls) > 0 and grad_norm(head.fc_mil_det) > 0
    assert grad_norm(head.shared_fcs) > 0 and x[0].grad.abs().sum() > 0
    assert grad_norm(head.fc_refine) == 0
    head.zero_grad(set_to_none=True)
    losses['loss_ref1'].backward(retain_graph=True)
    assert grad_norm(head.fc_refine[0]) > 0 and grad_norm(head.shared_fcs) > 0
    # pseudo labels are constants: no gradient into the MIL branch or stage 2
    assert grad_norm(head.fc_mil_cls) == 0 and grad_norm(head.fc_mil_det) == 0
    assert grad_norm(head.fc_refine[1]) == 0
    head.zero_grad(set_to_none=True)
    losses['loss_ref3'].backward()
    assert grad_norm(head.fc_refine[2]) > 0
    assert grad_norm(head.fc_refine[:2]) == 0


def test_negative_images_are_all_background():
    head = build_head()
    x, proposals, samples = make_inputs()
    img_labels = torch.zeros(2, NUM_CLASSES)
    losses = head.loss(x, proposals, samples, img_labels)
    assert all(torch.isfinite(v) for v in losses.values())
    out = head(x, bbox2roi([p.bboxes for p in proposals]))
    logp = out['refine_logits'][0].log_softmax(1)[:, -1]
    expected = -(logp[:30].mean() + logp[30:].mean()) / 2
    assert losses['loss_ref1'].item() == pytest.approx(expected.item(),
                                                       rel=1e-5)


def test_empty_proposals():
    head = build_head(with_reg=True)
    x, proposals, samples = make_inputs(counts=(0, 20))
    img_labels = torch.tensor([[1., 0.], [0., 1.]])
    losses = head.loss(x, proposals, samples, img_labels)
    assert all(torch.isfinite(v) for v in losses.values())
    mil, refs = manual_losses(head, x, proposals, img_labels)
    assert losses['loss_mil'].item() == pytest.approx(mil.item(), rel=1e-5)
    assert losses['loss_ref1'].item() == pytest.approx(refs[0].item(),
                                                       rel=1e-5)
    # no proposal at all: zero losses that still back-propagate
    x, proposals, samples = make_inputs(counts=(0, 0))
    losses = head.loss(x, proposals, samples, img_labels)
    assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert x[0].grad is not None
    results = head.predict(x, proposals, samples)
    assert [len(r) for r in results] == [0, 0]
    assert results[0].bboxes.shape == (0, 4)


def test_mixed_supervision_uses_gt_boxes():
    head = build_head()
    gt_box = rand_boxes(30, seed=0)[[3]]  # proposal 3 of image 0
    gts = [(gt_box, torch.tensor([1])), None]
    x, proposals, samples = make_inputs(gt=gts)
    img_labels = torch.tensor([[0., 1.], [1., 0.]])
    losses = head.loss(x, proposals, samples, img_labels)
    _, refs = manual_losses(head, x, proposals, img_labels, gts=gts)
    _, refs_mined = manual_losses(head, x, proposals, img_labels)
    for k in range(3):
        value = losses[f'loss_ref{k + 1}'].item()
        assert value == pytest.approx(refs[k].item(), rel=1e-5)
        assert value != pytest.approx(refs_mined[k].item(), rel=1e-5)
    # has_boxes=False (WeakCocoDataset metainfo) ignores them
    samples[0].set_metainfo(dict(has_boxes=False))
    losses_no_boxes = head.loss(x, proposals, samples, img_labels)
    assert losses_no_boxes['loss_ref1'].item() == pytest.approx(
        refs_mined[0].item(), rel=1e-5)
    samples[0].set_metainfo(dict(has_boxes=True))
    # use_gt_bboxes=False ignores them
    head_weak = build_head(use_gt_bboxes=False)
    head_weak.load_state_dict(head.state_dict())
    losses = head_weak.loss(x, proposals, samples, img_labels)
    assert losses['loss_ref1'].item() == pytest.approx(refs_mined[0].item(),
                                                       rel=1e-5)


@pytest.mark.parametrize('agnostic', [True, False])
def test_regression_branch(agnostic):
    head = build_head(with_reg=True, reg_class_agnostic=agnostic)
    gt_box = rand_boxes(30, seed=0)[[3]] + 2.  # near proposal 3 of image 0
    gts = [(gt_box, torch.tensor([0])), None]
    x, proposals, samples = make_inputs(gt=gts)
    img_labels = torch.tensor([[1., 0.], [1., 0.]])
    losses = head.loss(x, proposals, samples, img_labels)
    assert losses['loss_reg'].item() > 0
    losses['loss_reg'].backward()
    assert head.fc_reg.weight.grad.abs().sum() > 0
    assert head.fc_refine[2].weight.grad is None
    head.test_cfg.score_thr = 0.
    results = head.predict(x, proposals, samples, rescale=False)
    assert all(torch.isfinite(r.bboxes).all() for r in results)
    assert all((r.bboxes >= 0).all() and (r.bboxes <= IMG).all()
               for r in results)


def test_predict_rescales_and_scores_are_stage_mean():
    head = build_head(test_cfg=dict(score_thr=0., max_per_img=1000,
                                    nms=dict(type='nms', iou_threshold=1.)))
    x, proposals, samples = make_inputs(counts=(30, 0, 50), scale=2.)
    results = head.predict(x, proposals, samples, rescale=True)
    assert [len(r) for r in results] == [30 * NUM_CLASSES, 0,
                                         50 * NUM_CLASSES]
    out = head(x, bbox2roi([p.bboxes for p in proposals]))
    mean = torch.stack([v.softmax(1) for v in out['refine_logits']]).mean(0)
    for res, props, scores in zip([results[0], results[2]],
                                  [proposals[0], proposals[2]],
                                  mean.split([30, 50])):
        # every box is a proposal divided by the scale factor
        dist = (res.bboxes[:, None] - props.bboxes[None] / 2.).abs().amax(-1)
        dist = dist.min(1).values
        assert dist.max() < 1e-4
        assert res.scores.max().item() == pytest.approx(
            scores[:, :NUM_CLASSES].max().item(), rel=1e-5)
        assert set(res.labels.tolist()) <= set(range(NUM_CLASSES))
        assert (res.scores[:-1] >= res.scores[1:]).all()
    # default test_cfg: NMS and max_per_img apply
    head.test_cfg.update(nms=dict(type='nms', iou_threshold=0.3),
                         max_per_img=10)
    results = head.predict(x, proposals, samples)
    assert all(len(r) <= 10 for r in results)


def test_top_ratio_and_ignore_options():
    head = build_head(pseudo_label='top_ratio', top_ratio=0.1,
                      bg_ignore_iou_thr=0.1)
    x, proposals, samples = make_inputs()
    losses = head.loss(x, proposals, samples, torch.tensor([[1., 1.],
                                                            [0., 1.]]))
    assert all(torch.isfinite(v) for v in losses.values())


def test_config_checks():
    head = build_head(train_cfg=dict(fg_iou_thr=0.6, pseudo_label='top_ratio'))
    assert head.fg_iou_thr == 0.6 and head.pseudo_label == 'top_ratio'
    assert isinstance(head, OICRHead)
    with pytest.raises(ValueError, match='unknown OICRHead train_cfg'):
        build_head(train_cfg=dict(fg_thr=0.6))
    with pytest.raises(ValueError, match='pseudo_label'):
        build_head(pseudo_label='all')
    with pytest.raises(ValueError, match='num_refine_stages'):
        build_head(num_refine_stages=0)
    x, proposals, samples = make_inputs()
    with pytest.raises(ValueError, match='batch_img_labels'):
        build_head().loss(x, proposals, samples, torch.zeros(2, 3))


def test_loss_outputs_hold_the_aggregated_refinement_output():
    """``outputs`` gets the mean of the K stages' softmax (detached): what
    LD-WSCCD mines its distillation boxes from (Sec. III.D.3)."""
    head = build_head()
    x, proposals, samples = make_inputs()
    img_labels = torch.tensor([[1., 0.], [1., 1.]])
    outputs = {}
    head.loss(x, proposals, samples, img_labels, outputs=outputs)
    rois = bbox2roi([p.bboxes for p in proposals])
    assert torch.equal(outputs['rois'], rois)
    logits = head(x, rois)['refine_logits']
    mean = torch.stack([lg.softmax(1) for lg in logits]).mean(0)
    assert outputs['refine_scores'].shape == (80, NUM_CLASSES + 1)
    assert torch.allclose(outputs['refine_scores'], mean, atol=1e-6)
    assert not outputs['refine_scores'].requires_grad
