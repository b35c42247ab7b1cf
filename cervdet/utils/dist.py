"""Device-agnostic initialisation of ``torch.distributed``.

MMEngine 0.10.x's ``init_dist('pytorch')`` always calls
``torch.cuda.set_device`` and defaults to the ``nccl`` backend, so
``tools/dist_train.sh`` dies on CPU-only machines. :func:`init_dist_device_agnostic`
is the same launch path for both: it binds the process to its GPU when CUDA is
available, and otherwise falls back from ``nccl`` to ``gloo``.
"""
import os
import warnings
from typing import Optional

import torch
import torch.distributed as torch_dist


def select_backend(requested: Optional[str], cuda_available: bool) -> str:
    """Pick the process-group backend for this machine.

    Args:
        requested (str, optional): Backend from ``env_cfg.dist_cfg.backend``
            (``None`` means "best for the device").
        cuda_available (bool): Whether CUDA devices are visible.

    Returns:
        str: ``requested`` when the device supports it, ``'nccl'`` for GPUs
        and ``'gloo'`` for CPUs otherwise.
    """
    if requested is None:
        return 'nccl' if cuda_available else 'gloo'
    if requested == 'nccl' and not cuda_available:
        warnings.warn('dist_cfg.backend="nccl" needs CUDA devices and none is '
                      'visible: using "gloo" (CPU) instead.')
        return 'gloo'
    return requested


def init_dist_device_agnostic(backend: Optional[str] = None,
                              **kwargs) -> None:
    """Initialise ``torch.distributed`` from the ``torch.distributed.run`` env.

    Reads ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (set by
    ``python -m torch.distributed.run``), binds the process to GPU
    ``LOCAL_RANK`` when CUDA is available and initialises the process group.

    Args:
        backend (str, optional): ``'nccl'``, ``'gloo'`` or ``'mpi'``; see
            :func:`select_backend`.
        **kwargs: Passed to ``torch.distributed.init_process_group``
            (e.g. ``timeout``).
    """
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ['LOCAL_RANK'])
    if cuda:
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(
        backend=select_backend(backend, cuda),
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def shutdown_dist() -> None:
    """Leave ``torch.distributed`` cleanly at the end of a run.

    Every rank waits at a barrier, then destroys the process group. Without
    it, a rank that finishes first closes its sockets while the others still
    hold theirs, and gloo can abort the slower rank (SIGABRT) as the
    interpreter tears the group down; torch also warns that
    ``destroy_process_group()`` was not called. A no-op when no process group
    is initialised (single-process runs).
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    try:
        torch_dist.barrier()
    finally:
        torch_dist.destroy_process_group()
