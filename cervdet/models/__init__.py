from . import (
    classifiers,
    dense_heads,
    detectors,
    heads,
    layers,
    losses,
    roi_heads,
    selfsup,
    slide_aggregators,
    task_modules,
)
from .classifiers import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
from .slide_aggregators import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403

__all__ = (
    classifiers.__all__ + dense_heads.__all__ + detectors.__all__ +
    heads.__all__ + layers.__all__ + losses.__all__ + roi_heads.__all__ +
    selfsup.__all__ + task_modules.__all__ + slide_aggregators.__all__)
