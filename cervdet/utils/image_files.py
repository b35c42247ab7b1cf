"""Image files of a folder and the output names derived from them."""
import os
import os.path as osp
from collections import Counter
from typing import List, Sequence

from .constants import IMG_EXTS


def list_images(path: str) -> List[str]:
    """The image files of a folder (sorted, not recursive) or one image.

    Args:
        path (str): An image file or a folder (files with an extension of
            :data:`~cervdet.utils.constants.IMG_EXTS`, any case).

    Returns:
        list[str]: ``[path]`` for a file, else the folder's images.

    Raises:
        FileNotFoundError: If ``path`` does not exist or a folder holds no
            image.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'input {path} is neither a file nor a '
                                'folder')
    files = sorted(osp.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMG_EXTS)
                   and osp.isfile(osp.join(path, f)))
    if not files:
        raise FileNotFoundError(f'no image ({", ".join(IMG_EXTS)}) in {path}')
    return files


def unique_stems(paths: Sequence[str]) -> List[str]:
    """Output names: the file stem, with the extension when stems clash.

    Args:
        paths (Sequence[str]): Image files.

    Returns:
        list[str]: One name per path (``x.jpg`` and ``x.png`` give
        ``x_jpg`` and ``x_png``).
    """
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    counts = Counter(stems)
    return [s if counts[s] == 1 else osp.basename(p).replace('.', '_')
            for s, p in zip(stems, paths)]


__all__ = ['list_images', 'unique_stems']
