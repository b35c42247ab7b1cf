from . import prior_generators
from .prior_generators import *  # noqa: F401,F403

__all__ = prior_generators.__all__
