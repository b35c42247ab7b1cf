"""A detector with fixed random weights that still gives boxes.

Pipeline tests and speed benchmarks need a real detector (same layers, same
cost) whose outputs are deterministic and spread out, without a trained
checkpoint: a freshly initialised RetinaNet scores every anchor at the
focal-loss prior (0.01), all nearly tied. Here the classification branch is
re-initialised so that scores vary strongly over the image (a few per tile
above 0.3 on the real ThinPrep field, few near-ties).
"""
from typing import Sequence, Union

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from cervdet.datasets.classes import BETHESDA_CLASSES


def random_scoring_detector(config: Union[str, Config], seed: int = 0,
                            cls_std: float = 0.1, cls_bias: float = -10.,
                            classes: Sequence[str] = BETHESDA_CLASSES
                            ) -> torch.nn.Module:
    """Build the detector of ``config`` with seeded random weights.

    Args:
        config (str | Config): A RetinaNet-style config (``bbox_head`` with
            ``cls_convs`` and ``retina_cls``).
        seed (int): Seed of the initialisation.
        cls_std (float): Std of the classification convs' weights.
        cls_bias (float): Bias of the classification output (logit).
        classes (Sequence[str]): ``dataset_meta['classes']`` of the model.

    Returns:
        nn.Module: The detector in eval mode, ``dataset_meta`` set.
    """
    from mmdet.registry import MODELS

    import cervdet  # noqa: F401
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    head = model.bbox_head
    for conv in head.cls_convs:
        torch.nn.init.normal_(conv.conv.weight, std=cls_std)
    torch.nn.init.normal_(head.retina_cls.weight, std=cls_std)
    torch.nn.init.constant_(head.retina_cls.bias, cls_bias)
    model.dataset_meta = dict(classes=tuple(classes))
    return model.eval()
