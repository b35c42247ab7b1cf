"""cervdet: an OpenMMLab plugin for cervical cytology screening.

Importing the package registers every cervdet module in the ``mmdet`` (and,
for classifiers, ``mmpretrain``) registries, and allow-lists MMEngine's
checkpoint contents for ``torch.load(weights_only=True)``.
"""
import warnings

from .version import __version__

# Lower bounds only: upper-bound asserts are what break plugins on new releases.
_MIN_VERSIONS = dict(mmengine='0.10.0', mmcv='2.0.0', mmdet='3.3.0')


def _check_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from mmengine.utils import digit_version
    for pkg, minimum in _MIN_VERSIONS.items():
        try:
            found = version(pkg)
        except PackageNotFoundError:
            continue
        if digit_version(found) < digit_version(minimum):
            warnings.warn(f'cervdet is tested with {pkg}>={minimum}, found '
                          f'{found}; see requirements/stack.env for the '
                          'version set used in CI.')


_check_versions()

from .utils import register_checkpoint_safe_globals  # noqa: E402

register_checkpoint_safe_globals()

from . import (  # noqa: E402,F401
    apis,
    datasets,
    engine,
    evaluation,
    models,
    visualization,
)

__all__ = [
    '__version__', 'apis', 'datasets', 'engine', 'evaluation', 'models',
    'visualization'
]
