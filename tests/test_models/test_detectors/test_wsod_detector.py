"""WSODDetector: training on a fixed synthetic batch, inference, data contract."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from cervdet.models.detectors import WSODDetector, image_labels_from_sample

NUM_CLASSES = 2
IMG = 128


def backbone_cfg(out_indices=(2, )):
    """ResNet-18 at width 16: stages of 16/32/64/128 channels."""
    return dict(type='ResNet', depth=18, base_channels=16, num_stages=4,
                out_indices=out_indices, frozen_stages=-1,
                norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                init_cfg=None)


def extractor_cfg(channels=64, strides=(16, )):
    return dict(type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=4,
                               sampling_ratio=0),
                out_channels=channels, featmap_strides=list(strides))


def build_detector(**kwargs) -> WSODDetector:
    cfg = dict(
        type='WSODDetector',
        backbone=backbone_cfg(),
        roi_head=dict(type='OICRHead', num_classes=NUM_CLASSES,
                      bbox_roi_extractor=extractor_cfg(),
                      fc_out_channels=64, dropout_ratio=0.),
        data_preprocessor=dict(type='DetDataPreprocessor',
                               mean=[128., 128., 128.], std=[64., 64., 64.],
                               bgr_to_rgb=False, pad_size_divisor=32))
    cfg.update(kwargs)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def rand_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (IMG - 40)
    wh = 12 + torch.rand(n, 2, generator=g) * 28
    return torch.cat([xy, xy + wh], dim=1)


def make_batch(counts=(30, 50), img_labels=([0], [0, 1]), scale=1.,
               with_gt=False):
    """Images with bright squares (class 0) and dark squares (class 1)."""
    g = torch.Generator().manual_seed(1)
    inputs, samples = [], []
    for i, (n, labels) in enumerate(zip(counts, img_labels)):
        img = 128 + 10 * torch.randn(3, IMG, IMG, generator=g)
        props = rand_boxes(n, seed=10 + i)
        for k, c in enumerate(labels):
            x1, y1 = 10 + 60 * k, 20 + 50 * i
            img[:, y1:y1 + 24, x1:x1 + 24] = 250. if c == 0 else 5.
            props = torch.cat([props, torch.tensor([[x1, y1, x1 + 24.,
                                                     y1 + 24.]])])
        s = DetDataSample(metainfo=dict(
            img_shape=(IMG, IMG),
            ori_shape=(round(IMG / scale), round(IMG / scale)),
            scale_factor=(scale, scale),
            img_labels=list(labels)))
        s.proposals = InstanceData(bboxes=props if n > 0 else torch.zeros(0, 4))
        s.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                      labels=torch.zeros(0, dtype=torch.long))
        inputs.append(img.clamp(0, 255))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_training_decreases_loss_and_predicts_in_original_scale():
    model = build_detector()
    batch = make_batch()
    assert [len(s.proposals) for s in batch['data_samples']] == [31, 52]
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    totals = []
    for _ in range(25):
        data = model.data_preprocessor(batch, training=True)
        losses = model(**data, mode='loss')
        assert set(losses) == {'loss_mil', 'loss_ref1', 'loss_ref2',
                               'loss_ref3'}
        total, _ = model.parse_losses(losses)
        assert torch.isfinite(total)
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(total.item())
    assert sum(totals[-3:]) / 3 < 0.7 * sum(totals[:3]) / 3, totals

    # inference on the same images, labelled as resized x2 from 64 x 64
    model.eval()
    batch = make_batch(scale=2.)
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        results = model(**data, mode='predict')
    for sample, res in zip(batch['data_samples'], results):
        pred = res.pred_instances
        assert len(pred) > 0
        assert (pred.bboxes >= 0).all() and (pred.bboxes <= IMG / 2).all()
        dist = (pred.bboxes[:, None] -
                sample.proposals.bboxes[None] / 2.).abs().amax(-1)
        assert dist.min(1).values.max() < 1e-4
        assert pred.labels.max() < NUM_CLASSES


def test_empty_proposal_image():
    model = build_detector(roi_head=dict(
        type='OICRHead', num_classes=NUM_CLASSES, with_reg=True,
        bbox_roi_extractor=extractor_cfg(), fc_out_channels=32,
        dropout_ratio=0.))
    batch = make_batch(counts=(0, 40), img_labels=([], [1]))
    assert len(batch['data_samples'][0].proposals) == 0
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    model.parse_losses(losses)[0].backward()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch), mode='predict')
    assert len(results[0].pred_instances) == 0
    assert results[0].pred_instances.bboxes.shape == (0, 4)
    assert len(results[1].pred_instances) > 0


def test_fpn_and_ssd_necks():
    fpn = build_detector(
        backbone=backbone_cfg(out_indices=(0, 1, 2, 3)),
        neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=16,
                  num_outs=4),
        roi_head=dict(type='OICRHead', num_classes=NUM_CLASSES,
                      bbox_roi_extractor=extractor_cfg(16, (4, 8, 16, 32)),
                      fc_out_channels=32, dropout_ratio=0.))
    # SSD neck levels have different widths: use level 0 (64 ch, stride 16)
    ssd = build_detector(
        backbone=backbone_cfg(out_indices=(2, 3)),
        neck=dict(type='SSDNeck', in_channels=(64, 128),
                  out_channels=(64, 128, 32), level_strides=(2, ),
                  level_paddings=(1, ), l2_norm_scale=20.),
        feat_levels=(0, ),
        roi_head=dict(type='OICRHead', num_classes=NUM_CLASSES,
                      bbox_roi_extractor=extractor_cfg(64, (16, )),
                      fc_out_channels=32, dropout_ratio=0.))
    batch = make_batch()
    for model in (fpn, ssd):
        data = model.data_preprocessor(batch, training=True)
        losses = model(**data, mode='loss')
        model.parse_losses(losses)[0].backward()
        assert all(torch.isfinite(v) for v in losses.values())
    assert len(ssd.extract_feat(data['inputs'])) == 1
    outs = ssd(**data, mode='tensor')
    assert outs[0].shape == (83, NUM_CLASSES)
    assert outs[2][0].shape == (83, NUM_CLASSES + 1)


def test_image_labels_contract():
    s = DetDataSample(metainfo=dict(img_labels=[1]))
    assert image_labels_from_sample(s, 3).tolist() == [0., 1., 0.]
    s = DetDataSample(metainfo=dict(img_labels=torch.tensor([0, 2, 2])))
    assert image_labels_from_sample(s, 3).tolist() == [1., 0., 1.]
    s = DetDataSample(metainfo=dict(img_labels=[]))
    assert image_labels_from_sample(s, 3).tolist() == [0., 0., 0.]
    s = DetDataSample()
    s.gt_instances = InstanceData(bboxes=torch.zeros(2, 4),
                                  labels=torch.tensor([2, 2]))
    assert image_labels_from_sample(s, 3).tolist() == [0., 0., 1.]
    with pytest.raises(ValueError, match='img_labels'):
        image_labels_from_sample(DetDataSample(), 3)
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        image_labels_from_sample(DetDataSample(metainfo=dict(img_labels=[3])),
                                 3)


def test_missing_proposals_are_reported():
    model = build_detector()
    batch = make_batch()
    del batch['data_samples'][1].proposals
    data = model.data_preprocessor(batch, training=True)
    with pytest.raises(ValueError, match='LoadProposals'):
        model(**data, mode='loss')


def test_train_and_test_cfg_reach_the_head():
    model = build_detector(train_cfg=dict(pseudo_label='top_ratio',
                                          top_ratio=0.2),
                           test_cfg=dict(score_thr=0.05, max_per_img=7))
    assert model.roi_head.pseudo_label == 'top_ratio'
    assert model.roi_head.top_ratio == 0.2
    assert model.roi_head.test_cfg.score_thr == 0.05
    assert model.roi_head.test_cfg.max_per_img == 7
    assert model.roi_head.test_cfg.nms.iou_threshold == 0.3
    assert isinstance(model, WSODDetector)
