"""check_same_2d: one message for two tensors that must share a 2-D shape."""
import pytest
import torch

from cervdet.models.utils import check_same_2d


def test_check_same_2d():
    check_same_2d(torch.zeros(2, 3), torch.ones(2, 3), 'a and b', 'B, N')
    with pytest.raises(ValueError, match=r'a and b must both be '
                       r'Tensor\[B, N\]; got \(2, 3\) and \(2, 4\)'):
        check_same_2d(torch.zeros(2, 3), torch.zeros(2, 4), 'a and b',
                      'B, N')
    with pytest.raises(ValueError, match=r'got \(6,\) and \(6,\)'):
        check_same_2d(torch.zeros(6), torch.zeros(6), 'a and b', 'B, N')
