"""The test pipeline of a config, found the way mmdet finds it.

Both inferencers read a model's test pipeline from its config (the slide
inferencer to feed tiles to a detector, the ROI inferencer to crop cells as
its classifier saw them). :func:`split_pipelines` wraps mmdet's
:func:`mmdet.utils.get_test_pipeline_cfg` (dataset wrappers, ``datasets``
lists) and also reads the val dataloader, for configs without a test one.
"""
import copy
from typing import Iterator, List, Sequence, Tuple

from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict


def split_pipelines(cfg: Config, splits: Sequence[str] = ('test', 'val')
                    ) -> Iterator[Tuple[str, List[dict]]]:
    """The pipelines of the ``<split>_dataloader`` datasets of ``cfg``.

    Args:
        cfg (Config): A whole config.
        splits (Sequence[str]): Dataloaders read, in this order.

    Yields:
        tuple: ``(split, pipeline)`` for every split whose dataset (or the
        dataset it wraps) has a non-empty ``pipeline``; ``pipeline`` is a
        deep copy (list of dicts).
    """
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        try:
            pipeline = get_test_pipeline_cfg(
                ConfigDict(test_dataloader=copy.deepcopy(loader)))
        except (RuntimeError, AttributeError, KeyError, IndexError):
            continue  # no pipeline in this split's dataset
        if pipeline:
            yield split, copy.deepcopy(list(pipeline))


__all__ = ['split_pipelines']
