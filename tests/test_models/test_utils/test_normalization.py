"""Reading a data preprocessor's normalisation and converting between two."""
import torch
from mmdet.models import DetDataPreprocessor
from mmpretrain.models import ClsDataPreprocessor

from cervdet.models.utils import (
    InputNormalization,
    convert_normalization,
    normalization_transfer,
    preprocessor_normalization,
    same_normalization,
    transfer_normalization,
)

IMAGENET = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])


def test_reads_mmengine_and_mmpretrain_preprocessors():
    det = preprocessor_normalization(DetDataPreprocessor(**IMAGENET,
                                                         bgr_to_rgb=True))
    assert det.enabled and det.to_rgb
    assert det.mean.shape == det.std.shape == (3, )
    assert torch.allclose(det.mean, torch.tensor(IMAGENET['mean']))
    cls = preprocessor_normalization(ClsDataPreprocessor(
        mean=[1., 2., 3.], std=[4., 5., 6.], to_rgb=False))
    assert cls.enabled and not cls.to_rgb
    assert cls.std.tolist() == [4., 5., 6.]
    off = preprocessor_normalization(DetDataPreprocessor())
    assert off == InputNormalization(None, None, False) and not off.enabled
    mean, std = off.mean_std(3)
    assert mean.tolist() == [0.] * 3 and std.tolist() == [1.] * 3


def test_same_normalization():
    a = preprocessor_normalization(DetDataPreprocessor(**IMAGENET,
                                                       bgr_to_rgb=True))
    b = preprocessor_normalization(ClsDataPreprocessor(**IMAGENET,
                                                       to_rgb=True))
    assert same_normalization(a, b)
    assert not same_normalization(a, b._replace(to_rgb=False))
    assert not same_normalization(a, InputNormalization(None, None, True))
    assert same_normalization(InputNormalization(None, None, False),
                              InputNormalization(None, None, False))


def test_convert_gives_what_the_other_preprocessor_gives():
    """A batch normalised by a detector's preprocessor, converted, equals
    the batch the classifier's preprocessor makes of the same images."""
    torch.manual_seed(0)
    raw = [torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
           for _ in range(2)]
    det_pp = DetDataPreprocessor(**IMAGENET, bgr_to_rgb=True)
    cls_pp = ClsDataPreprocessor(mean=[10., 20., 30.], std=[2., 4., 8.])
    det_in = det_pp(dict(inputs=raw), False)['inputs']
    cls_in = cls_pp(dict(inputs=raw), False)['inputs']
    out = convert_normalization(det_in, preprocessor_normalization(det_pp),
                                preprocessor_normalization(cls_pp))
    assert torch.allclose(out, cls_in, atol=1e-4)
    # no normalisation on one side; the same normalisation: x itself
    plain = DetDataPreprocessor()
    plain_in = plain(dict(inputs=raw), False)['inputs']
    back = convert_normalization(det_in, preprocessor_normalization(det_pp),
                                 preprocessor_normalization(plain))
    assert torch.allclose(back, plain_in, atol=1e-3)
    norm = preprocessor_normalization(det_pp)
    assert convert_normalization(det_in, norm, norm) is det_in


def test_normalization_transfer_matches_direct_normalisation():
    torch.manual_seed(0)
    raw_bgr = torch.rand(2, 3, 5, 5) * 255
    det_mean = torch.tensor([123.675, 116.28, 103.53])   # RGB order
    det_std = torch.tensor([58.395, 57.12, 57.375])
    det_in = (raw_bgr.flip(1) - det_mean.view(1, 3, 1, 1)) / det_std.view(
        1, 3, 1, 1)                                        # RGB, normalised
    pcn_mean = torch.tensor([10., 20., 30.])              # BGR order
    pcn_std = torch.tensor([2., 4., 8.])
    expected = (raw_bgr - pcn_mean.view(1, 3, 1, 1)) / pcn_std.view(1, 3, 1, 1)
    perm, scale, shift = normalization_transfer(det_mean, det_std, True,
                                                pcn_mean, pcn_std, False)
    out = transfer_normalization(det_in, perm, scale, shift)
    assert torch.allclose(out, expected, atol=1e-4)
    # same order: identity permutation
    perm, _, _ = normalization_transfer(det_mean, det_std, True, det_mean,
                                        det_std, True)
    assert perm.tolist() == [0, 1, 2]
