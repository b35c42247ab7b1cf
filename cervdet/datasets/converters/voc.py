"""Pascal VOC XML annotations -> one COCO detection dict (the logic of
``tools/dataset_converters/voc_to_coco.py``).

Boxes follow MMDetection's ``pascal_voc.py`` converter: COCO
``[xmin, ymin, xmax - xmin, ymax - ymin]`` from the VOC corners. The class
list is given (category ids 1..C in that order; an object of another class is
an error) or, without it, the names met in the XMLs (sorted).
"""
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import cv2
from tqdm import tqdm

from cervdet.utils.constants import IMG_EXTS


class VOCFormatError(ValueError):
    """A VOC XML that cannot be converted (message names file and fix)."""


def collect_xmls(inputs: Iterable) -> List[Path]:
    """Expand folders (recursively) and files into a sorted list of XMLs.

    Args:
        inputs (Iterable[str | Path]): XML files and/or folders.

    Returns:
        list[Path]: Unique XML paths, sorted.
    """
    xmls = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            xmls.update(path.rglob('*.xml'))
        elif path.is_file():
            xmls.add(path)
        else:
            raise FileNotFoundError(f'{path} does not exist')
    if not xmls:
        raise FileNotFoundError(f'no .xml files in {list(map(str, inputs))}')
    return sorted(xmls)


def _text(node: ET.Element, tag: str, xml: Path, default: Optional[str] = None) -> str:
    """Text of child ``tag`` of ``node``; error naming ``xml`` when missing."""
    child = node.find(tag)
    if child is None or child.text is None:
        if default is not None:
            return default
        raise VOCFormatError(f'{xml}: <{node.tag}> has no <{tag}>')
    return child.text.strip()


def parse_voc_xml(xml: Path) -> Dict:
    """Read one VOC XML.

    Args:
        xml (Path): Annotation file.

    Returns:
        dict: ``filename``, ``width``, ``height`` (0 if absent) and
        ``objects``: list of ``{'name', 'bbox': [x1, y1, x2, y2],
        'difficult': bool}``.
    """
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as e:
        raise VOCFormatError(f'{xml}: not valid XML ({e})') from e
    size = root.find('size')
    width = int(float(_text(size, 'width', xml, '0'))) if size is not None else 0
    height = int(float(_text(size, 'height', xml, '0'))) if size is not None else 0
    objects = []
    for k, obj in enumerate(root.findall('object')):
        name = _text(obj, 'name', xml)
        box = obj.find('bndbox')
        if box is None:
            raise VOCFormatError(f'{xml}: object #{k} ({name}) has no <bndbox>')
        try:
            bbox = [float(_text(box, t, xml)) for t in ('xmin', 'ymin', 'xmax', 'ymax')]
        except ValueError as e:
            raise VOCFormatError(f'{xml}: object #{k} ({name}) has a non-numeric '
                                 f'box coordinate ({e})') from e
        difficult = _text(obj, 'difficult', xml, '0') in ('1', 'true', 'True')
        objects.append(dict(name=name, bbox=bbox, difficult=difficult))
    return dict(filename=_text(root, 'filename', xml, xml.stem + '.jpg'),
                width=width, height=height, objects=objects)


def _resolve_image(xml: Path, filename: str, img_dir: Optional[Path]) -> Optional[Path]:
    """Find the image of an XML: ``img_dir/filename``, else beside the XML."""
    for folder in ([img_dir] if img_dir else []) + [xml.parent]:
        cand = folder / filename
        if cand.is_file():
            return cand
        for ext in IMG_EXTS:  # <filename> without extension
            if (folder / (filename + ext)).is_file():
                return folder / (filename + ext)
    return None


def convert_voc(inputs: Iterable, out_file=None,
                classes: Optional[Sequence[str]] = None,
                img_dir=None, difficult: str = 'crowd', overwrite: bool = False,
                progress: bool = True) -> Dict:
    """Convert VOC XML files to a COCO detection dict.

    Args:
        inputs (Iterable[str | Path]): XML files and/or folders of XMLs.
        out_file (str | Path | None): JSON to write (``None``: do not write).
        classes (Sequence[str] | None): Class names in id order; ``None``:
            the sorted names found in the XMLs.
        img_dir (str | Path | None): Image folder ``file_name`` is relative
            to; ``None``: the folder of each XML (the image must be found
            there). Missing sizes are read from the image.
        difficult (str): ``'crowd'`` (keep with ``iscrowd=1``, ignored in
            training and COCO evaluation as in VOC's protocol), ``'keep'``
            (normal boxes) or ``'skip'``.
        overwrite (bool): Replace an existing ``out_file``.
        progress (bool): Show a progress bar.

    Returns:
        dict: COCO dict with ``images``, ``annotations``, ``categories``.
    """
    if difficult not in ('crowd', 'keep', 'skip'):
        raise ValueError(f'difficult must be crowd, keep or skip, got {difficult!r}')
    if out_file is not None and Path(out_file).exists() and not overwrite:
        raise FileExistsError(f'{out_file} exists; pass --overwrite to replace it')
    img_dir = Path(img_dir) if img_dir is not None else None
    xmls = collect_xmls(inputs)
    parsed = [(x, parse_voc_xml(x))
              for x in tqdm(xmls, desc='voc', unit='xml', disable=not progress)]
    if classes is None:
        classes = sorted({o['name'] for _, p in parsed for o in p['objects']})
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    if len(cat_id) != len(classes):
        raise ValueError(f'--classes has duplicates: {list(classes)}')
    coco = dict(images=[], annotations=[],
                categories=[dict(id=i, name=c) for c, i in cat_id.items()])
    for img_id, (xml, p) in enumerate(parsed, start=1):
        image = _resolve_image(xml, p['filename'], img_dir)
        if image is None and (img_dir is not None or not p['width']):
            raise FileNotFoundError(
                f"{xml}: image {p['filename']} not found in "
                f"{img_dir or xml.parent}; pass --img-dir with the image folder")
        width, height = p['width'], p['height']
        if not (width and height):
            img = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise VOCFormatError(f'{xml}: no <size> and {image} is unreadable')
            height, width = img.shape[:2]
        base = img_dir if img_dir is not None else xml.parent
        file_name = (image.relative_to(base).as_posix() if image is not None
                     else p['filename'])
        coco['images'].append(dict(id=img_id, file_name=file_name, width=width,
                                   height=height))
        for k, obj in enumerate(p['objects']):
            if obj['name'] not in cat_id:
                raise VOCFormatError(
                    f"{xml}: object #{k} has class {obj['name']!r}, which is not in "
                    f"--classes {list(classes)}. Add it to --classes (or fix the "
                    f"label in the XML), or omit --classes to take the names "
                    f"from the XMLs.")
            if obj['difficult'] and difficult == 'skip':
                continue
            x1, y1, x2, y2 = obj['bbox']
            w, h = x2 - x1, y2 - y1
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=img_id,
                category_id=cat_id[obj['name']], bbox=[x1, y1, w, h],
                area=max(w, 0) * max(h, 0),
                iscrowd=int(obj['difficult'] and difficult == 'crowd')))
    if out_file is not None:
        Path(out_file).parent.mkdir(parents=True, exist_ok=True)
        Path(out_file).write_text(json.dumps(coco))
    return coco


__all__ = ['VOCFormatError', 'collect_xmls', 'parse_voc_xml', 'convert_voc']
