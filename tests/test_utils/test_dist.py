"""Device-agnostic process-group set-up and the clean shutdown of the tools."""
import warnings

import pytest
import torch.distributed as dist

from cervdet.utils.dist import init_dist_device_agnostic, select_backend, shutdown_dist
from conftest import free_port


def test_select_backend_per_device():
    assert select_backend(None, cuda_available=True) == 'nccl'
    assert select_backend(None, cuda_available=False) == 'gloo'
    assert select_backend('gloo', cuda_available=True) == 'gloo'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert select_backend('nccl', cuda_available=False) == 'gloo'
    assert any('needs CUDA' in str(w.message) for w in caught)


def test_shutdown_dist_is_a_noop_without_a_group():
    assert not dist.is_initialized()
    shutdown_dist()  # single-process runs call it too
    assert not dist.is_initialized()


def test_init_then_shutdown_single_rank_gloo(monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    init_dist_device_agnostic(backend=None)
    try:
        assert dist.is_initialized()
        assert dist.get_backend() in ('gloo', 'nccl')
    finally:
        shutdown_dist()
    assert not dist.is_initialized()
    # a second call after the group is gone stays harmless
    shutdown_dist()
    with pytest.raises(ValueError):
        dist.get_rank()
