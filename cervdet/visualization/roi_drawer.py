"""Draw an ROI classification result: cells coloured by attention.

Every cell box is drawn in the colour of its attention on
``cv2.COLORMAP_JET`` (blue = 0, dark red = the ROI's largest attention,
whose value the legend gives), with a line thickness growing with attention; the
``max_label_cells`` most attended cells get a tag with their predicted cell
class (one colour per class; the attention value when the model has no cell
branches). A header bar above the image gives the ROI class, the class
probabilities and a colour-bar legend of the attention scale.

Usage::

    from cervdet.visualization import draw_roi
    canvas = draw_roi(img, result, classes=result['classes'])
    cv2.imwrite('roi_vis.jpg', canvas)
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

#: Default per-class tag colours (BGR); class i uses entry i modulo length.
DEFAULT_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (80, 175, 76), (0, 152, 255), (54, 67, 244), (176, 39, 156),
    (243, 150, 33), (136, 150, 0), (59, 235, 255), (72, 85, 121))

Palette = Union[Sequence[Sequence[int]], Dict[str, Sequence[int]], None]


def attention_colours(attention: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """JET colours of attention scores, relative to the largest.

    Args:
        attention (np.ndarray): float ``[N]`` (>= 0).

    Returns:
        tuple: ``(colours, rel)``: uint8 ``[N, 3]`` BGR and float ``[N]``
        attention divided by its maximum (in ``[0, 1]``; 0 for all-zero).
    """
    att = np.clip(np.asarray(attention, np.float64).reshape(-1), 0, None)
    top = att.max() if att.size else 0.
    rel = att / top if top > 0 else np.zeros_like(att)
    if att.size == 0:
        return np.zeros((0, 3), np.uint8), rel
    lut = np.round(rel * 255).astype(np.uint8)[:, None]  # [N, 1]
    colours = cv2.applyColorMap(lut, cv2.COLORMAP_JET)[:, 0]  # [N, 3]
    return colours, rel


def class_colours(classes: Sequence[str], palette: Palette = None
                  ) -> Dict[str, Tuple[int, int, int]]:
    """BGR colour per class name from a list/dict palette (or the default).

    Raises:
        ValueError: If a dict palette misses a class.
    """
    if isinstance(palette, dict):
        missing = [c for c in classes if c not in palette]
        if missing:
            raise ValueError(f'palette has no colour for classes {missing}')
        return {c: tuple(int(v) for v in palette[c]) for c in classes}
    pal = list(palette) if palette else list(DEFAULT_PALETTE)
    return {c: tuple(int(v) for v in pal[i % len(pal)])
            for i, c in enumerate(classes)}


def _text(canvas: np.ndarray, text: str, org: Tuple[int, int], scale: float,
          colour=(255, 255, 255), thickness: int = 1) -> None:
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                thickness, cv2.LINE_AA)


def draw_roi(img: np.ndarray,
             result: dict,
             classes: Sequence[str],
             palette: Palette = None,
             max_label_cells: int = 20) -> np.ndarray:
    """Picture of one ROI result.

    Args:
        img (np.ndarray): uint8 ``[H, W, 3]`` BGR ROI (not modified).
        result (dict): An :class:`~cervdet.apis.ROIInferencer` result:
            ``roi_class``, ``roi_scores`` ``{class: prob}`` and ``cells``
            (``bbox`` xyxy, ``attention``, optional ``cell_class``); a
            result with ``roi_class`` None shows its ``reason``.
        classes (Sequence[str]): ROI class names (order of the header and
            of the palette).
        palette (list | dict, optional): BGR colour per class (list in
            ``classes`` order or dict by name); defaults to
            :data:`DEFAULT_PALETTE`.
        max_label_cells (int): Number of most attended cells that get a tag.

    Returns:
        np.ndarray: uint8 ``[hdr + H, W, 3]`` BGR: a header bar of height
        ``hdr`` above a copy of the image with the cells drawn.
    """
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'draw_roi expects a [H, W, 3] image; got '
                         f'{img.shape}')
    h, w = img.shape[:2]
    scale = float(np.clip(w / 1400., 0.35, 1.2))
    thick = max(1, int(round(scale * 2)))
    (_, th), base = cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX, scale,
                                    thick)
    line = th + base + 6
    hdr = 3 * line + 4
    canvas = np.zeros((hdr + h, w, 3), np.uint8)
    canvas[:hdr] = (40, 40, 40)
    roi = canvas[hdr:]
    roi[:] = img
    ccol = class_colours(classes, palette)
    cells = result.get('cells') or []

    # -- cells: boxes coloured by attention, thicker when more attended
    if cells:
        boxes = np.round(np.asarray([c['bbox'] for c in cells],
                                    np.float64)).astype(np.int64)
        colours, rel = attention_colours([c.get('attention', 0.)
                                          for c in cells])
        tmax = max(2, int(round(min(h, w) / 200.)) + 2)
        widths = 1 + np.round(rel * (tmax - 1)).astype(np.int64)
        order = np.argsort(rel, kind='stable')  # most attended drawn last
        for i in order:
            x1, y1, x2, y2 = boxes[i]
            cv2.rectangle(roi, (int(x1), int(y1)), (int(x2), int(y2)),
                          tuple(int(v) for v in colours[i]), int(widths[i]))
        tag_scale = scale * 0.8
        for i in order[::-1][:max(int(max_label_cells), 0)]:
            cell = cells[i]
            name = cell.get('cell_class')
            text = name if name is not None else f'{cell["attention"]:.2f}'
            colour = ccol.get(name, (255, 255, 255)) if name else \
                tuple(int(v) for v in colours[i])
            (tw, tth), tb = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                            tag_scale, 1)
            x1, y1 = int(boxes[i, 0]), int(boxes[i, 1])
            y0 = max(y1 - tth - tb - 2, 0)
            cv2.rectangle(roi, (x1, y0), (x1 + tw + 4, y0 + tth + tb + 2),
                          colour, -1)
            _text(roi, text, (x1 + 2, y0 + tth + 1), tag_scale, (0, 0, 0))

    # -- header: ROI class, probabilities, attention colour bar
    y = line - base - 3
    if result.get('roi_class') is None:
        _text(canvas, f'ROI: no result ({result.get("reason") or "?"})',
              (4, y), scale, (0, 200, 255), thick)
    else:
        roi_class = result['roi_class']
        prob = (result.get('roi_scores') or {}).get(roi_class)
        head = f'ROI: {roi_class}' + (f' ({prob:.2f})' if prob is not None
                                      else '')
        head += f'   {len(cells)} cells'
        _text(canvas, head, (4, y), scale, ccol.get(roi_class,
                                                    (255, 255, 255)), thick)
    x = 4
    for c in classes:
        p = (result.get('roi_scores') or {}).get(c)
        if p is None:
            continue
        text = f'{c} {p:.2f}'
        _text(canvas, text, (x, y + line), scale, ccol[c], thick)
        x += cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale,
                             thick)[0][0] + int(12 * scale / 0.35)
    atts = [float(c.get('attention', 0.)) for c in cells]
    label_lo = 'attention 0'
    label_hi = f'{max(atts):.3g} (max)' if atts else 'max'
    lo_w = cv2.getTextSize(label_lo, cv2.FONT_HERSHEY_SIMPLEX, scale,
                           1)[0][0]
    hi_w = cv2.getTextSize(label_hi, cv2.FONT_HERSHEY_SIMPLEX, scale,
                           1)[0][0]
    bar_x0 = 4 + lo_w + 6
    bar_x1 = max(bar_x0 + 8, w - hi_w - 10)
    bar = np.linspace(0, 255, bar_x1 - bar_x0).round().astype(np.uint8)
    bar = cv2.applyColorMap(bar[None], cv2.COLORMAP_JET)[0]  # [L, 3]
    by0, by1 = 2 * line + 4, 3 * line - 2
    if bar_x1 <= w:
        canvas[by0:by1, bar_x0:bar_x1] = bar[None]
    _text(canvas, label_lo, (4, 3 * line - base - 3), scale)
    _text(canvas, label_hi, (min(bar_x1 + 4, w - hi_w), 3 * line - base - 3),
          scale)
    return canvas


def pick_roi_result(data, index: Optional[int] = None,
                    stem: Optional[str] = None, source: str = 'results'
                    ) -> dict:
    """The ROI result of a per-ROI file or of a ``results.json``.

    Args:
        data (dict): The loaded JSON (``OUT/rois/<stem>.json`` or
            ``OUT/results.json`` of ``tools/roi_cls/infer_rois.py``).
        index (int, optional): ROI index in a ``results.json``.
        stem (str, optional): ROI stem in a ``results.json``.
        source (str): File name for messages.

    Returns:
        dict: One per-ROI result.

    Raises:
        ValueError: If a results.json is given without a valid selection,
            or ``data`` is no result.
    """
    if isinstance(data, dict) and 'results' in data:
        results = data['results']
        if stem is not None:
            hits = [r for r in results if r.get('stem') == stem]
            if not hits:
                raise ValueError(f'{source}: no ROI with stem {stem!r}')
            return hits[0]
        if index is None:
            if len(results) == 1:
                return results[0]
            raise ValueError(f'{source} holds {len(results)} ROIs: choose '
                             'one with --index or --stem')
        if not -len(results) <= index < len(results):
            raise ValueError(f'{source}: --index {index} out of range '
                             f'({len(results)} ROIs)')
        return results[index]
    if not isinstance(data, dict) or 'cells' not in data and \
            'roi_class' not in data:
        raise ValueError(f'{source} is not an infer_rois.py result')
    return data


__all__ = ['attention_colours', 'class_colours', 'draw_roi',
           'pick_roi_result']
