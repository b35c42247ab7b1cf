"""Pictures of a screened slide: the gallery of the most suspicious cells and
the overview of every detection.

* :func:`slide_palette`: the colour of every class (shared with the GeoJSON
  of :mod:`cervdet.apis.slide.writers`).
* :func:`draw_gallery`: the top-N cells by score, read from the slide.
* :func:`draw_overview`: a thumbnail with every detection, the top-N
  highlighted and numbered, and the tissue mask outline.

Detections (``dets``) are a dict of numpy arrays: ``bboxes float32[N, 4]``
(x1, y1, x2, y2 in level-0 slide pixels), ``scores float32[N]``, ``labels
int64[N]`` (index into ``classes``). The files are written by
:mod:`cervdet.apis.slide.writers`.
"""
import colorsys
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from cervdet.utils.slide_merge import check_dets

Dets = Dict[str, np.ndarray]
Palette = Union[Sequence[Sequence[int]], Dict[str, Sequence[int]], None]

#: Default RGB colours of class 0, 1, ... (distinct; more classes get
#: golden-ratio hues).
DEFAULT_SLIDE_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (46, 160, 67), (255, 193, 7), (255, 112, 0), (156, 39, 176),
    (229, 57, 53), (121, 17, 17), (30, 136, 229), (0, 172, 193),
    (109, 76, 65), (233, 30, 99), (96, 125, 139))


def slide_palette(classes: Sequence[str],
                  palette: Palette = None) -> np.ndarray:
    """RGB colour of every class.

    Args:
        classes (Sequence[str]): Class names.
        palette (list | dict, optional): RGB per class index, or a dict
            class name -> RGB. Default: :data:`DEFAULT_SLIDE_PALETTE`, then
            golden-ratio hues (deterministic).

    Returns:
        np.ndarray: uint8 ``[K, 3]`` RGB.
    """
    k = len(classes)
    if isinstance(palette, dict):
        missing = [c for c in classes if c not in palette]
        if missing:
            raise ValueError(f'palette has no colour for classes {missing}')
        cols = [palette[c] for c in classes]
    elif palette is not None:
        cols = list(palette)
        if len(cols) < k:
            raise ValueError(f'palette has {len(cols)} colours for {k} '
                             'classes: give one RGB per class')
        cols = cols[:k]
    else:
        cols = list(DEFAULT_SLIDE_PALETTE[:k])
        for i in range(len(cols), k):
            h = (0.13 + 0.618034 * i) % 1.
            cols.append(tuple(round(255 * v)
                              for v in colorsys.hsv_to_rgb(h, .8, .9)))
    arr = np.asarray(cols, dtype=np.int64).reshape(k, 3)
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError('palette colours must be RGB ints in [0, 255]')
    return arr.astype(np.uint8)


def _put_text(img: np.ndarray, text: str, org: Tuple[int, int],
              scale: float, colour=(255, 255, 255), thickness: int = 1,
              outline: bool = False) -> None:
    if outline:
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thickness, cv2.LINE_AA)


def _top(scores: np.ndarray, top_n: int) -> np.ndarray:
    order = np.lexsort((np.arange(scores.size), -scores))
    return order[:max(0, int(top_n))]


def draw_gallery(reader,
                 dets: Dets,
                 classes: Sequence[str],
                 top_n: int = 10,
                 crop_size: int = 128,
                 context: float = 1.5,
                 cols: int = 5,
                 palette: Palette = None,
                 min_crop: int = 32) -> np.ndarray:
    """A grid of the ``top_n`` cells by score, read from the slide.

    Each tile: the level-0 square around the box (side = ``context`` x the
    longer box side, at least ``min_crop`` px) resized to ``crop_size``, the
    box outlined and a frame in the class colour, and a caption bar below
    (``#rank class score``). Fewer cells give a smaller grid; no cell gives
    a picture saying so.

    Args:
        reader (SlideReader): See :mod:`cervdet.datasets.slide_readers`.
        dets (dict): Detections (level-0 px).
        classes (Sequence[str]): Class names.
        top_n (int): Number of cells.
        crop_size (int): Side of a tile image (px).
        context (float): Crop side / box side.
        cols (int): Tiles per row.
        palette (list | dict, optional): See :func:`slide_palette`.
        min_crop (int): Smallest crop side read (level-0 px).

    Returns:
        np.ndarray: uint8 ``[H, W, 3]`` RGB; tiles are ``crop_size`` wide
        and ``crop_size + caption`` high.
    """
    bboxes, scores, labels = check_dets(dets, len(classes))
    colours = slide_palette(classes, palette).astype(int).tolist()
    top = _top(scores, top_n)
    cap = max(14, int(round(crop_size * 0.16)))
    scale = max(0.3, crop_size / 128. * 0.38)
    tile_h = crop_size + cap
    if top.size == 0:
        w = max(crop_size * max(1, cols), 240)
        img = np.full((tile_h, w, 3), 255, np.uint8)
        _put_text(img, 'no detections', (8, tile_h // 2 + 5), scale * 1.3,
                  (0, 0, 0), 1)
        return img
    ncols = min(max(1, cols), top.size)
    nrows = int(np.ceil(top.size / ncols))
    canvas = np.full((nrows * tile_h, ncols * crop_size, 3), 255, np.uint8)
    for rank, i in enumerate(top.tolist()):  # loop over <= top_n cells
        x1, y1, x2, y2 = bboxes[i]
        side = max(min_crop, int(np.ceil(max(x2 - x1, y2 - y1) * context)))
        ox = int(np.floor((x1 + x2) / 2 - side / 2))
        oy = int(np.floor((y1 + y2) / 2 - side / 2))
        crop = np.ascontiguousarray(reader.read_region(ox, oy, side, side, 0))
        f = crop_size / float(side)
        crop = cv2.resize(crop, (crop_size, crop_size),
                          interpolation=cv2.INTER_AREA if f < 1
                          else cv2.INTER_LINEAR)
        colour = tuple(colours[labels[i]])
        p1 = (int(round((x1 - ox) * f)), int(round((y1 - oy) * f)))
        p2 = (int(round((x2 - ox) * f)), int(round((y2 - oy) * f)))
        cv2.rectangle(crop, p1, p2, colour, 1)
        t = max(2, crop_size // 40)
        cv2.rectangle(crop, (0, 0), (crop_size - 1, crop_size - 1), colour,
                      t)
        r, c = divmod(rank, ncols)
        y0, x0 = r * tile_h, c * crop_size
        canvas[y0:y0 + crop_size, x0:x0 + crop_size] = crop
        canvas[y0 + crop_size:y0 + tile_h, x0:x0 + crop_size] = colour
        dark = sum(colour) < 384  # white text on dark colours
        _put_text(canvas, f'#{rank + 1} {classes[labels[i]]} {scores[i]:.2f}',
                  (x0 + 3, y0 + crop_size + cap - max(3, cap // 4)), scale,
                  (255, 255, 255) if dark else (0, 0, 0), 1)
    return canvas


def _draw_markers(img: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                  half: np.ndarray, colours: np.ndarray) -> None:
    """Hollow squares of half-side ``half`` (px) at ``(cx, cy)``, drawn by
    array indexing (one pass per distinct marker size, not per box)."""
    h, w = img.shape[:2]
    for r in np.unique(half):
        sel = half == r
        off = np.arange(-r, r + 1)
        ring = np.concatenate([  # the perimeter offsets of the square
            np.stack([off, np.full_like(off, -r)], 1),
            np.stack([off, np.full_like(off, r)], 1),
            np.stack([np.full_like(off, -r), off], 1),
            np.stack([np.full_like(off, r), off], 1)])
        xs = (cx[sel, None] + ring[None, :, 0]).reshape(-1)
        ys = (cy[sel, None] + ring[None, :, 1]).reshape(-1)
        col = np.repeat(colours[sel], ring.shape[0], axis=0)
        ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok]] = col[ok]


def draw_overview(reader,
                  dets: Dets,
                  classes: Sequence[str],
                  max_side: int = 2048,
                  mask: Optional[np.ndarray] = None,
                  mask_downsample: Optional[float] = None,
                  top_n_highlight: int = 10,
                  palette: Palette = None,
                  mask_colour: Tuple[int, int, int] = (0, 90, 255)
                  ) -> Tuple[np.ndarray, float]:
    """A low-resolution overview of a slide with its detections.

    Every detection is a small hollow square in its class colour at its
    centre (side from the box size, 5 to 13 px), drawn by array indexing so
    10^5 boxes take milliseconds; higher scores are drawn last. The
    ``top_n_highlight`` best boxes get a thick box and their rank number;
    the tissue mask gets a ``mask_colour`` outline.

    Args:
        reader (SlideReader): Gives :meth:`thumbnail`.
        dets (dict): Detections (level-0 px).
        classes (Sequence[str]): Class names.
        max_side (int): Longest side of the overview.
        mask (np.ndarray, optional): bool ``[h, w]`` tissue mask.
        mask_downsample (float, optional): Level-0 px per mask px (default:
            slide width / mask width).
        top_n_highlight (int): Number of boxes highlighted and numbered.
        palette (list | dict, optional): See :func:`slide_palette`.
        mask_colour (tuple): RGB of the mask outline.

    Returns:
        tuple: ``(rgb uint8[h, w, 3], downsample)`` with ``downsample`` the
        level-0 px per overview px.
    """
    bboxes, scores, labels = check_dets(dets, len(classes))
    thumb, ds = reader.thumbnail(max_side)
    img = np.ascontiguousarray(thumb[..., :3]).astype(np.uint8).copy()
    h, w = img.shape[:2]
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f'mask must be a 2-D bool array; got shape '
                             f'{mask.shape}')
        if mask_downsample is None:  # the mask covers the whole slide
            m = cv2.resize(mask.astype(np.uint8), (w, h),
                           interpolation=cv2.INTER_NEAREST)
        else:  # place the mask by its own downsample
            f = float(mask_downsample) / ds
            mm = cv2.resize(mask.astype(np.uint8),
                            (max(1, int(round(mask.shape[1] * f))),
                             max(1, int(round(mask.shape[0] * f)))),
                            interpolation=cv2.INTER_NEAREST)
            m = np.zeros((h, w), np.uint8)
            m[:mm.shape[0], :mm.shape[1]] = mm[:h, :w]
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, tuple(int(v) for v in mask_colour),
                         max(1, max(h, w) // 1000))
    if bboxes.shape[0] == 0:
        return img, ds
    colours = slide_palette(classes, palette)[labels]
    order = np.argsort(scores, kind='stable')  # best drawn last (on top)
    b = bboxes[order] / ds
    cx = np.round((b[:, 0] + b[:, 2]) / 2).astype(np.int64)
    cy = np.round((b[:, 1] + b[:, 3]) / 2).astype(np.int64)
    half = np.clip(np.round(np.maximum(b[:, 2] - b[:, 0],
                                       b[:, 3] - b[:, 1]) / 2), 2,
                   6).astype(np.int64)
    _draw_markers(img, cx, cy, half, colours[order])
    pal = slide_palette(classes, palette).astype(int).tolist()
    thick = max(2, max(h, w) // 600)
    scale = max(0.4, max(h, w) / 2048. * 0.7)
    for rank, i in enumerate(_top(scores, top_n_highlight).tolist()):
        x1, y1, x2, y2 = bboxes[i] / ds
        half_i = max(6, int(round(max(x2 - x1, y2 - y1) / 2)) + 3)
        c = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
        p1, p2 = (c[0] - half_i, c[1] - half_i), (c[0] + half_i,
                                                  c[1] + half_i)
        cv2.rectangle(img, p1, p2, (0, 0, 0), thick + 2)
        cv2.rectangle(img, p1, p2, tuple(pal[labels[i]]), thick)
        _put_text(img, str(rank + 1), (p2[0] + 2, max(p1[1] + 10, 10)), scale,
                  tuple(pal[labels[i]]), max(1, thick // 2), outline=True)
    return img, ds


__all__ = ['DEFAULT_SLIDE_PALETTE', 'slide_palette', 'draw_gallery',
           'draw_overview']
