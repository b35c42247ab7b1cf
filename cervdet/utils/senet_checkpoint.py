"""ImageNet SE-ResNeXt-50 weights for mmpretrain's ``SEResNeXt``.

mmpretrain ships ImageNet checkpoints for SE-ResNet-50/101 only (its
``configs/seresnet/metafile.yml``), none for the SE-ResNeXt-50 (32x4d) that
Fei et al. (MICCAI 2023, Sec. 2.1, 3.1) use as the Patch Correction Network.
Their code initialises it from Cadene's ``pretrainedmodels``
(``se_resnext50_32x4d``, ``pretrained='imagenet'``). This module gives those
weights to mmpretrain's backbone through an MMEngine checkpoint scheme, so a
config says, as mmpretrain's configs do with their URLs::

    backbone=dict(type='SEResNeXt', depth=50, groups=32, width_per_group=4,
                  init_cfg=dict(type='Pretrained',
                                checkpoint='senet://se_resnext50_32x4d'))

``senet://<name>`` downloads the named checkpoint (``SENET_URLS``) through
``torch.hub`` (cached in ``$TORCH_HOME/hub/checkpoints``, so a file copied
there is found offline) and renames its keys; ``senet://<path>`` reads a local
file of Cadene's, timm's or mmpretrain's layout. ``convert_senet_state_dict``
is the key mapping itself.

One architectural difference remains: Cadene's stem max-pool is
``MaxPool2d(3, 2, ceil_mode=True)``, mmpretrain's ``MaxPool2d(3, 2,
padding=1)``; both give 56x56 at 224 px but sample windows shifted by one
pixel, which fine-tuning absorbs (timm's stem matches mmpretrain's).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

#: Named ImageNet-1k SE-ResNeXt checkpoints (the URLs their libraries use).
SENET_URLS = {
    # Cadene's pretrainedmodels (the PCN authors' initialisation)
    'se_resnext50_32x4d':
    'http://data.lip6.fr/cadene/pretrainedmodels/'
    'se_resnext50_32x4d-a260b3a4.pth',
    # timm's (a later, stronger ImageNet recipe)
    'seresnext50_32x4d_timm':
    'https://github.com/rwightman/pytorch-image-models/releases/download/'
    'v0.1-weights/seresnext50_32x4d_racm-a304a460.pth',
}

_CADENE_SE = re.compile(r'^(layer\d+\.\d+)\.se_module\.fc([12])\.')
_TIMM_SE = re.compile(r'^(layer\d+\.\d+)\.se\.fc([12])\.')
_HEADS = ('last_linear.', 'fc.')


def convert_senet_state_dict(state_dict: Dict[str, torch.Tensor],
                             source: str = '<state dict>'
                             ) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an SE-ResNe(X)t state dict to mmpretrain's ``SEResNeXt`` keys.

    Layouts recognised:

    - Cadene ``pretrainedmodels``: ``layer0.conv1`` / ``layer0.bn1`` (stem),
      ``layerN.M.se_module.fc1|fc2`` (SE block), ``last_linear`` (head);
    - timm: ``conv1`` / ``bn1``, ``layerN.M.se.fc1|fc2``, ``fc``;
    - mmpretrain (``layerN.M.se_layer.conv1.conv``): returned unchanged, with a
      leading ``backbone.`` removed.

    Convolutions, batch norms and ``downsample.0|1`` share their names in all
    three. The classification head is dropped.

    Args:
        state_dict (dict): Weights, optionally under ``'state_dict'``.
        source (str): Where they came from, for error messages.

    Returns:
        OrderedDict: Backbone weights with mmpretrain's names.

    Raises:
        ValueError: The layout is none of the three.
    """
    if 'state_dict' in state_dict and isinstance(state_dict['state_dict'],
                                                 dict):
        state_dict = state_dict['state_dict']
    keys = list(state_dict)
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    if any('.se_layer.' in k for k in keys):
        for k, v in state_dict.items():
            k = k[len('module.'):] if k.startswith('module.') else k
            if k.startswith('backbone.'):
                out[k[len('backbone.'):]] = v
            elif not k.startswith(('head.', 'neck.', 'data_preprocessor.')):
                out[k] = v
        return out
    if any(k.startswith('layer0.') for k in keys):
        se = _CADENE_SE
    elif any(_TIMM_SE.match(k) for k in keys):
        se = _TIMM_SE
    else:
        raise ValueError(
            f'{source}: not an SE-ResNe(X)t checkpoint of Cadene '
            "(keys 'layer0.conv1...', '...se_module.fc1...'), timm "
            "('...se.fc1...') or mmpretrain ('...se_layer.conv1.conv...'); "
            f'first keys: {keys[:5]}. Pass one of these or a senet:// name '
            f'({sorted(SENET_URLS)}).')
    for k, v in state_dict.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        if k.startswith(_HEADS):
            continue
        if k.startswith('layer0.'):
            k = k[len('layer0.'):]
        k = se.sub(r'\1.se_layer.conv\2.conv.', k)
        out[k] = v
    return out


def load_senet_checkpoint(filename: str,
                          map_location: Optional[str] = None
                          ) -> 'OrderedDict[str, torch.Tensor]':
    """MMEngine loader of ``senet://<name or path>`` checkpoints.

    Args:
        filename (str): ``senet://`` followed by a key of ``SENET_URLS`` or the
            path of a local SE-ResNeXt checkpoint (Cadene, timm or mmpretrain
            layout).
        map_location (str, optional): As ``torch.load``.

    Returns:
        OrderedDict: The weights with mmpretrain's ``SEResNeXt`` names.
    """
    name = filename[len('senet://'):]
    if name in SENET_URLS:
        ckpt = CheckpointLoader.load_checkpoint(SENET_URLS[name],
                                                map_location=map_location)
        source = SENET_URLS[name]
    elif osp.isfile(name):
        ckpt = torch.load(name, map_location=map_location, weights_only=False)
        source = name
    else:
        raise FileNotFoundError(
            f'checkpoint {filename!r}: {name!r} is neither a known name '
            f'({sorted(SENET_URLS)}) nor an existing file. Offline, download '
            f"{SENET_URLS['se_resnext50_32x4d']} elsewhere and either copy it "
            'to $TORCH_HOME/hub/checkpoints/ or set '
            "init_cfg.checkpoint='senet:///path/to/se_resnext50_32x4d-a260b3a4.pth'.")
    return convert_senet_state_dict(ckpt, source)


CheckpointLoader.register_scheme(prefixes='senet://')(load_senet_checkpoint)
