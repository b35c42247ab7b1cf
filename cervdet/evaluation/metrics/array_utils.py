"""Array helpers shared by the detection metrics."""
import numpy as np
import torch


def to_numpy(x) -> np.ndarray:
    """Tensor, ``BaseBoxes`` or array-like -> numpy array.

    Args:
        x (Tensor | BaseBoxes | array-like): e.g. ``pred_instances.bboxes``
            (Tensor[N, 4] or mmdet ``BaseBoxes``), scores Tensor[N] or a
            list.

    Returns:
        np.ndarray: The values on the CPU, detached, same shape.
    """
    if hasattr(x, 'tensor'):  # mmdet BaseBoxes
        x = x.tensor
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


__all__ = ['to_numpy']
