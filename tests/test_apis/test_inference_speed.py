"""Inference speed-ups: same detections as the detector as built."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from cervdet.apis.inference_speed import (
    bf16_supported,
    fuse_conv_bn,
    optimize_for_inference,
    push_score_thr,
)
from cervdet.datasets.slide_tiles import is_decoded, open_shared
from cervdet.testing import random_scoring_detector
from conftest import CPU_CONFIG


def _detector():
    """The CPU RetinaNet with random weights and non-trivial BN stats."""
    model = random_scoring_detector(Config.fromfile(str(CPU_CONFIG)),
                                    cls_std=0.05, cls_bias=-4.)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.02)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.4 + 0.8)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.02)
    return model.eval()


def _inputs(seed=0, n=2, size=128):
    from mmdet.structures import DetDataSample
    g = torch.Generator().manual_seed(seed)
    imgs = [(torch.rand(3, size, size, generator=g) * 255).to(torch.uint8)
            for _ in range(n)]
    samples = []
    for _ in range(n):
        s = DetDataSample()
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            scale_factor=(1., 1.), pad_shape=(size, size)))
        samples.append(s)
    return dict(inputs=imgs, data_samples=samples)


def _predict(model, data):
    with torch.no_grad():
        res = model.test_step(copy.deepcopy(data))
    return [r.pred_instances for r in res]


def test_fuse_conv_bn_matches_hand_values_and_refuses_training():
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([[[[2.]]], [[[3.]]]])
    bn = nn.BatchNorm2d(2)
    bn.running_mean.fill_(1.)
    bn.running_var.fill_(3.)  # sqrt(3 + eps) ~ 1.732
    bn.weight.data = torch.tensor([1., 2.])
    bn.bias.data = torch.tensor([0.5, -1.])
    seq = nn.Sequential(conv, bn, nn.ReLU()).eval()
    x = torch.tensor([[[[4.]]]])
    expect = seq(x)
    # by hand: (2*4 - 1) * 1/sqrt(3) + 0.5 and (3*4 - 1) * 2/sqrt(3) - 1
    s = np.sqrt(3. + bn.eps)
    np.testing.assert_allclose(expect.flatten().detach().numpy(),
                               [7 / s + 0.5, 22 / s - 1.], rtol=1e-6)
    assert fuse_conv_bn(seq) == 1
    assert isinstance(seq[1], nn.Identity)
    torch.testing.assert_close(seq(x), expect)
    with pytest.raises(ValueError, match='training mode'):
        fuse_conv_bn(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))


def test_optimized_detector_gives_the_same_detections():
    base = _detector()
    data = _inputs()
    s0 = _predict(base, data)[0].scores
    # ~30 boxes kept; the cut in a score gap wider than float rounding
    k = 25 + int(torch.argmax(s0[25:40] - s0[26:41]))
    thr = float(s0[k] + s0[k + 1]) / 2
    opt = optimize_for_inference(copy.deepcopy(base), score_thr=thr)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in opt.modules())
    assert n_bn == 0 < sum(isinstance(m, nn.BatchNorm2d)
                           for m in base.modules())
    assert opt.bbox_head.test_cfg['score_thr'] == np.nextafter(
        np.float32(thr), np.float32(0))
    assert opt.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    got_any = False
    for a, b in zip(_predict(base, data), _predict(opt, data)):
        keep = a.scores >= thr
        assert int(keep.sum()) == len(b) < 100  # under max_per_img
        got_any |= len(b) > 0
        # same boxes up to float rounding, in any order among equal scores
        d = torch.cdist(a.bboxes[keep], b.bboxes, p=float('inf')) + 1e3 * (
            a.labels[keep][:, None] != b.labels[None, :])  # same class
        j = d.argmin(1)
        assert float(d.min(1).values.max()) < 1e-2
        assert torch.equal(j.sort().values, torch.arange(len(b)))
        assert torch.equal(a.labels[keep], b.labels[j])
        torch.testing.assert_close(a.scores[keep], b.scores[j], atol=1e-4,
                                   rtol=0)
    assert got_any, 'the random detector must give boxes above thr'


def test_push_score_thr_only_raises():
    model = _detector()
    assert push_score_thr(model, 0.01) == 0.05  # mmdet's RetinaNet default
    assert push_score_thr(model, 0.4) == np.nextafter(np.float32(0.4),
                                                      np.float32(0))
    assert push_score_thr(model, 0.3) > 0.39  # never lowered
    two_stage = nn.Module()
    two_stage.roi_head = nn.Module()
    assert push_score_thr(two_stage, 0.4) is None


def test_bf16_close_to_fp32_or_clear_error():
    base = _detector()
    if not bf16_supported(torch.device('cpu')):
        with pytest.raises(ValueError, match='use precision fp32'):
            optimize_for_inference(copy.deepcopy(base), precision='bf16')
        return
    opt = optimize_for_inference(copy.deepcopy(base), score_thr=0.05,
                                 precision='bf16')
    data = _inputs()
    a = _predict(base, data)[0]
    b = _predict(opt, data)[0]
    assert b.scores.dtype == torch.float32 and len(b) > 0
    # top boxes agree; scores within bfloat16 rounding of the logits
    k = min(10, len(a), len(b))
    torch.testing.assert_close(a.scores[:k], b.scores[:k], atol=0.03, rtol=0)
    with pytest.raises(ValueError, match='precision'):
        optimize_for_inference(copy.deepcopy(base), precision='fp16')


def test_slide_inferencer_leaves_a_given_model_unchanged(tmp_path):
    import cv2

    from cervdet.apis import SlideInferencer
    base = _detector()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in base.modules())
    inf = SlideInferencer(Config.fromfile(str(CPU_CONFIG)), model=base,
                          tile_size=128, overlap=16, num_workers=0,
                          cell_feature_size=0, write_parquet=False,
                          score_thr=0.06)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in base.modules()) == n_bn
    assert sum(isinstance(m, nn.BatchNorm2d)
               for m in inf.model.modules()) == 0
    img = (np.random.default_rng(0).random((200, 300, 3)) * 255).astype(
        np.uint8)
    cv2.imwrite(str(tmp_path / 'f.png'), img)
    rep_opt = inf.run(tmp_path / 'f.png', tmp_path / 'a')
    plain = SlideInferencer(Config.fromfile(str(CPU_CONFIG)), model=base,
                            tile_size=128, overlap=16, num_workers=0,
                            cell_feature_size=0, write_parquet=False,
                            score_thr=0.06, optimize=False)
    rep = plain.run(tmp_path / 'f.png', tmp_path / 'b')
    assert rep_opt['detections'] == rep['detections']
    assert rep['detections']['merged'] > 0


def test_open_shared_decodes_a_plain_image_once(tmp_path):
    import cv2
    p = tmp_path / 'field.png'
    cv2.imwrite(str(p), np.full((40, 60, 3), 7, np.uint8))
    assert not is_decoded(p)
    a = open_shared(p)
    assert is_decoded(p) and open_shared(p) is a  # alive: shared
    cv2.imwrite(str(p), np.full((40, 80, 3), 9, np.uint8))
    b = open_shared(p)  # the file changed: decoded again
    assert b is not a and b.dimensions == (80, 40)
    del a, b  # weak references: the decoded images go with their readers
    import gc
    gc.collect()
    assert not is_decoded(p)
