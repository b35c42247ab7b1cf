"""Inference-only speed-ups of an mmdet detector, output-preserving.

What the profile of ``tools/slide_infer.py`` showed (docs/benchmarks.md):
more than 95 % of a tile's time is the detector's ``test_step``, mostly its
convolutions; the rest of the pipeline (reading, test pipeline, edge
filtering, merging) is a few percent. So the speed path works on the model:

- :func:`fuse_conv_bn` folds every eval-mode BatchNorm into the conv before
  it (``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) +
  beta``): one pass over each feature map fewer, same outputs up to float
  rounding;
- ``channels_last`` keeps activations NHWC, the layout oneDNN's CPU
  convolutions run in (no reorder before and after every conv);
- ``precision='bf16'`` (opt-in, not output-preserving) runs the backbone,
  neck and head under ``torch.autocast`` in bfloat16 (AMX / AVX512-BF16
  CPUs, recent GPUs) and hands float32 maps to the box decoding and NMS;
  scores move by ~1e-3, so boxes near the threshold can appear or vanish
  (docs/benchmarks.md measures the agreement with float32);
- :func:`push_score_thr` raises the dense head's own ``test_cfg.score_thr``
  to the caller's threshold, so candidates that would be thrown away after
  the head never enter its top-k, box decoding and NMS. The kept boxes are
  the same: NMS only lets a higher-scoring box suppress a lower one, and
  mmdet filters by score before its top-k.

:func:`optimize_for_inference` applies all three (each can be turned off).
The model must be in eval mode and is modified in place; copy it first when
the caller still needs the original.
"""
from typing import Optional

import numpy as np
import torch
from torch import nn


def fuse_conv_bn(model: nn.Module) -> int:
    """Fold each eval-mode BatchNorm into the ``nn.Conv2d`` registered just
    before it in the same parent (mmcv's rule; ResNet blocks, ConvModules).

    The BatchNorm is replaced by ``nn.Identity``. Convs and norms in
    separate parents (a norm not right after its conv) are left as they are.

    Args:
        model (nn.Module): Detector in eval mode.

    Returns:
        int: Number of BatchNorm layers folded.

    Raises:
        ValueError: When a BatchNorm is in training mode (its statistics
            would still change).
    """
    norms = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)
    bad = [n for n, m in model.named_modules()
           if isinstance(m, norms) and m.training]
    if bad:
        raise ValueError(f'fuse_conv_bn: BatchNorm layers {bad[:3]} are in '
                         'training mode: call model.eval() first')
    folded = 0
    for parent in model.modules():
        last_name = None
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                last_name = name
            elif isinstance(child, norms) and last_name is not None:
                conv = parent._modules[last_name]
                if child.track_running_stats and \
                        child.running_var is not None and \
                        child.num_features == conv.out_channels:
                    _fold(conv, child)
                    parent._modules[name] = nn.Identity()
                    folded += 1
                last_name = None
            else:
                last_name = None
    return folded


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """``conv`` <- ``bn(conv(.))`` (eval statistics)."""
    w = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
    factor = w / torch.sqrt(bn.running_var + bn.eps)  # [C_out]
    bias = conv.bias if conv.bias is not None else \
        torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * factor.reshape(-1, 1, 1, 1),
                               requires_grad=False)
    conv.bias = nn.Parameter((bias - bn.running_mean) * factor + beta,
                             requires_grad=False)


def push_score_thr(model: nn.Module, score_thr: float) -> Optional[float]:
    """Raise the dense head's ``test_cfg.score_thr`` to ``score_thr``.

    Only raised, never lowered (the caller filters at its own threshold
    anyway). The head keeps ``score > thr``; the value set is the float32
    just below ``score_thr``, so the head keeps ``score >= score_thr``.
    Two-stage detectors (``roi_head``) are left unchanged: their
    RPN proposals must not be thinned by the final threshold.

    Returns:
        float | None: The head's threshold now, None when there is no
        dense-head ``test_cfg`` with a ``score_thr``.
    """
    if getattr(model, 'roi_head', None) is not None:
        return None
    head = getattr(model, 'bbox_head', None)
    cfg = getattr(head, 'test_cfg', None)
    if cfg is None or 'score_thr' not in cfg:
        return None
    # mmdet keeps ``score > thr``, the caller ``score >= score_thr``: the
    # float32 just below score_thr makes both keep the same boxes
    below = float(np.nextafter(np.float32(score_thr), np.float32(0)))
    cfg['score_thr'] = max(float(cfg.get('score_thr') or 0.), below)
    return cfg['score_thr']


def _to_channels_last(module: nn.Module, args):
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), ) + \
            tuple(args[1:])
    return None


PRECISIONS = ('fp32', 'bf16')


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(o) for o in out)
    return out


def autocast_forward(module: nn.Module, dtype: torch.dtype) -> None:
    """Run ``module.forward`` under ``torch.autocast(dtype)`` and return
    float32 tensors (the instance's ``forward`` is wrapped, so the module's
    other methods, state dict and hooks are unchanged)."""
    if getattr(module, '_cervdet_autocast', None) is not None:
        return
    inner = module.forward

    def forward(*args, **kwargs):
        device = next(module.parameters()).device.type
        with torch.autocast(device, dtype=dtype):
            out = inner(*args, **kwargs)
        return _to_float(out)

    module.forward = forward
    module._cervdet_autocast = dtype


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 convolutions are fast on ``device`` (CPU: oneDNN
    with AVX512-BF16 or AMX; CUDA: compute capability >= 8)."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type == 'cpu':
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def optimize_for_inference(model: nn.Module,
                           score_thr: Optional[float] = None,
                           fuse_bn: bool = True,
                           channels_last: bool = True,
                           precision: str = 'fp32') -> nn.Module:
    """Apply the output-preserving speed-ups to ``model`` (in place).

    Args:
        model (nn.Module): mmdet detector in eval mode.
        score_thr (float, optional): The caller's score threshold, pushed
            into the dense head (:func:`push_score_thr`); None: unchanged.
        fuse_bn (bool): Fold BatchNorms into convs (:func:`fuse_conv_bn`).
        channels_last (bool): Parameters and the backbone input in NHWC
            (the backbone gets a forward pre-hook converting its input).
        precision (str): ``'fp32'`` (exact) or ``'bf16'`` (backbone, neck
            and head under bfloat16 autocast; needs :func:`bf16_supported`).

    Returns:
        nn.Module: ``model``.
    """
    if model.training:
        raise ValueError('optimize_for_inference: the model is in training '
                         'mode: call model.eval() first')
    if precision not in PRECISIONS:
        raise ValueError(f'precision={precision!r}: choose one of '
                         f'{PRECISIONS}')
    if precision == 'bf16':
        device = next(model.parameters()).device
        if not bf16_supported(device):
            raise ValueError(
                f'precision bf16: {device} has no fast bfloat16 '
                '(CPU without AVX512-BF16/AMX, or GPU before Ampere); '
                'use precision fp32 (--precision fp32)')
    if fuse_bn:
        fuse_conv_bn(model)
    if score_thr is not None:
        push_score_thr(model, score_thr)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        backbone = getattr(model, 'backbone', None)
        if backbone is not None and not getattr(backbone,
                                                '_cervdet_nhwc', False):
            backbone.register_forward_pre_hook(_to_channels_last)
            backbone._cervdet_nhwc = True
    if precision == 'bf16':
        for name in ('backbone', 'neck', 'bbox_head', 'rpn_head'):
            part = getattr(model, name, None)
            if isinstance(part, nn.Module) and \
                    any(True for _ in part.parameters()):
                autocast_forward(part, torch.bfloat16)
    return model


__all__ = ['fuse_conv_bn', 'push_score_thr', 'optimize_for_inference',
           'autocast_forward', 'bf16_supported', 'PRECISIONS']
