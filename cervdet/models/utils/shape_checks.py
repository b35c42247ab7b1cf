"""Shape checks of tensor arguments with messages that name them."""
from torch import Tensor


def check_same_2d(a: Tensor, b: Tensor, what: str, dims: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` are 2-D with one shape.

    Args:
        a (Tensor[X, Y]): First tensor.
        b (Tensor[X, Y]): Second tensor.
        what (str): Their names in the message, e.g. ``'scores and mask'``.
        dims (str): The expected dimensions in the message, e.g.
            ``'B, N'``.

    Raises:
        ValueError: ``"<what> must both be Tensor[<dims>]; got <shape of a>
        and <shape of b>"``.
    """
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f'{what} must both be Tensor[{dims}]; got '
                         f'{tuple(a.shape)} and {tuple(b.shape)}')


__all__ = ['check_same_2d']
