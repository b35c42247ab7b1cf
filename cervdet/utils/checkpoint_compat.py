"""Safe loading of MMEngine checkpoints on torch >= 2.6.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it unpickles
only allow-listed types. MMEngine 0.10.x saves, next to the weights, the
message hub (``HistoryBuffer`` objects holding numpy arrays), numpy scalars in
the log and dataset metainfo, so ``load_from`` / ``--resume`` fail with
``UnpicklingError: Weights only load failed``.

Instead of turning safe loading off (``weights_only=False`` executes arbitrary
code from the file), :func:`register_checkpoint_safe_globals` allow-lists
exactly the types MMEngine and cervdet write. It is called on
``import cervdet``. The one ``getattr`` those files contain is served by
:func:`history_buffer_statistic`, which resolves nothing else.
"""
import pickle
from typing import Any, Callable, List

import numpy as np
import torch


def _numpy_globals() -> List[Callable]:
    """Numpy callables/types that pickles of arrays, scalars and dtypes use."""
    out: List[Callable] = [np.ndarray, np.dtype]
    # numpy >= 2 moved ``numpy.core`` to ``numpy._core``; pickles written with
    # either version name one of them.
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:  # pragma: no cover - depends on numpy version
            continue
        out += [mod._reconstruct, mod.scalar]
    # dtype classes (``numpy.dtypes.Float64DType`` ...), pickled with dtypes
    # since numpy 1.25.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
        ]
    return out


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """A ``getattr`` that resolves only ``HistoryBuffer``'s statistics methods.

    A ``HistoryBuffer`` pickles its ``_statistics_methods`` dict as
    ``getattr(HistoryBuffer, 'mean')`` etc., so checkpoints name the global
    ``builtins.getattr``. Allow-listing the real ``getattr`` would let a file
    reach any attribute of any allowed object; this stand-in is registered
    under that name instead and refuses everything but those methods.

    Raises:
        pickle.UnpicklingError: For any other owner or attribute.
    """
    from mmengine.logging import HistoryBuffer

    # The built-in statistics are registered on first instantiation only, so
    # a fresh process has not seen them yet.
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(
        HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); cervdet only '
        'allows HistoryBuffer statistics methods here')


def _mmengine_globals() -> List[Any]:
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_statistic, 'builtins.getattr')]


def checkpoint_safe_globals() -> List[Any]:
    """All globals cervdet allow-lists for ``torch.load(weights_only=True)``.

    Entries are callables, or ``(callable, 'module.name')`` pairs that torch
    uses in place of the named global.
    """
    return _numpy_globals() + _mmengine_globals()


def register_checkpoint_safe_globals() -> None:
    """Allow-list MMEngine's checkpoint contents for safe ``torch.load``.

    A no-op on torch versions without ``torch.serialization.add_safe_globals``
    (< 2.4), which load these checkpoints without an allow-list.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(checkpoint_safe_globals())
