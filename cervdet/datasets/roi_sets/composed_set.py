"""Building a composed ROI set: source crops, their split, every ROI of a
split and ``meta.json`` (see :mod:`cervdet.datasets.roi_sets`)."""
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from cervdet.datasets.classes import ROI_CLASSES
from cervdet.datasets.synthesis import (
    FIELD_FILE,
    SPLITS,
    BackgroundBank,
    CropCache,
    boxes_per_category,
    load_background_bank,
    prepare_out_dir,
    split_items,
    usable_abnormal,
)
from cervdet.utils.constants import IMG_EXTS, SHARED_DATA_ROOT

from .composition import TrimmedCropCache, _groups, compose_roi
from .config import SOURCES, ROISetConfig, make_config
from .labels import balanced_labels, roi_coco, rois_per_class


def list_crops(crop_root: Path, source: str = 'cric'
               ) -> Dict[str, List[Path]]:
    """Sorted crops per crop folder of ``source``.

    For CRIC the folders are the cell classes (:data:`CELL_CLASSES`), for
    Herlev the seven Herlev classes (:data:`HERLEV_FOLDER_TO_CELL_CLASS`).

    Returns:
        dict: ``{folder name: [Path]}`` in the source's folder order.

    Raises:
        FileNotFoundError: If a class folder is missing or empty.
    """
    spec = SOURCES[source]
    folders = list(spec.folder_to_cell_class)
    crops = {}
    for cls in folders:
        folder = Path(crop_root) / cls
        if not folder.is_dir():
            raise FileNotFoundError(
                f'crop folder {folder} not found; --crop-root must hold one '
                f'folder per class {folders} for --source {source} (e.g. '
                f'the shared `{spec.crop_dir}`)')
        files = sorted(p for p in folder.iterdir()
                       if p.suffix.lower() in IMG_EXTS)
        if not files:
            raise FileNotFoundError(f'no images in {folder}')
        crops[cls] = files
    return crops


def field_of(path: Path) -> str:
    """Source field of a CRIC crop ``<fieldstem>_<cellid>.png``."""
    return Path(path).stem.rsplit('_', 1)[0]


def split_crops(crops: Dict[str, List[Path]], ratios: Sequence[float],
                seed: int, by_field: bool = False
                ) -> Dict[str, Dict[str, List[Path]]]:
    """Split every folder's crops into disjoint train/val/test parts.

    Args:
        crops (dict): ``{folder: [Path]}``.
        ratios (Sequence[float]): train / val / test shares.
        seed (int): Seed.
        by_field (bool): Split the source fields (:func:`field_of`) of all
            folders together, so all cells of a field go to one split (the
            CRIC crops, named ``<fieldstem>_<cellid>``); else each folder's
            crops on their own.

    Returns:
        dict: ``{split: {folder: [Path]}}``.
    """
    rng = np.random.default_rng([seed, 31337])
    pools: Dict[str, Dict[str, List[Path]]] = {s: {} for s in SPLITS}
    if by_field:
        fields = sorted({field_of(p) for ps in crops.values() for p in ps})
        split_of = {f: s for s, part in zip(
            SPLITS, split_items(fields, ratios, rng)) for f in part}
        for cls, paths in crops.items():
            for s in SPLITS:
                pools[s][cls] = [p for p in paths
                                 if split_of[field_of(p)] == s]
        return pools
    for cls, paths in crops.items():
        for s, part in zip(SPLITS, split_items(paths, ratios, rng)):
            pools[s][cls] = part
    return pools


def pool_by_cell_class(pool: Dict[str, List[Path]],
                       folder_to_cell_class: Dict[str, str]
                       ) -> Dict[str, List[Path]]:
    """Merge the crops of folders of the same cell class.

    Args:
        pool (dict[str, list[Path]]): ``{folder: [Path]}`` of one split.
        folder_to_cell_class (dict[str, str]): Folder -> cell class.

    Returns:
        dict: ``{cell class: [Path]}`` (classes in first-seen order).
    """
    merged: Dict[str, List[Path]] = {}
    for folder, paths in pool.items():
        merged.setdefault(folder_to_cell_class[folder], []).extend(paths)
    return merged


def build_split(cfg: ROISetConfig, split: str, pool: Dict[str, List[Path]],
                crops: CropCache, bank: BackgroundBank,
                img_dir: Path, bar: Optional[tqdm] = None
                ) -> Tuple[Dict, set]:
    """Compose and write all ROIs of one split.

    Returns:
        tuple: ``(coco, used)``: the annotation dict of the interface
        (COCO + ``roi_classes``, ``cell_to_roi_class``, ``roi_label``) and
        the set of crop paths used.
    """
    spec = SOURCES[cfg.source]
    mapping, cell_classes = spec.cell_to_roi_class, spec.cell_classes
    split_idx = SPLITS.index(split)
    n = cfg.num_rois(split)
    labels = balanced_labels(n, len(ROI_CLASSES),
                             np.random.default_rng([cfg.seed, split_idx, 7]))
    groups = _groups(pool, mapping)
    for r in ROI_CLASSES:
        if (labels == ROI_CLASSES.index(r)).any() and not groups[r]:
            raise RuntimeError(f'no {r} crops in split {split}; check '
                               '--crop-root and --split-ratios')
    cat_id = {c: i + 1 for i, c in enumerate(cell_classes)}
    coco = roi_coco(cell_classes, mapping)
    img_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_idx, i])
        label = ROI_CLASSES[labels[i]]
        img, cells = compose_roi(cfg, label, pool, crops, bank, rng,
                                 mapping)
        file_name = f'roi_{split}_{i:05d}.jpg'
        if not cv2.imwrite(str(img_dir / file_name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise IOError(f'cannot write {img_dir / file_name}')
        coco['images'].append(dict(id=i + 1, file_name=file_name,
                                   width=cfg.roi_size, height=cfg.roi_size,
                                   roi_label=label))
        for c in cells:
            used.add(c['source'])
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=i + 1,
                category_id=cat_id[c['category']], bbox=c['bbox'],
                area=c['area'], iscrowd=0))
        if bar is not None:
            bar.update(1)
    return coco, used


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def build_roi_set(out_dir, crop_root=None,
                  field_path: Optional[Path] = None, preset: str = 'cpu',
                  force_overwrite: bool = False, progress: bool = True,
                  **overrides) -> Dict:
    """Build the three ROI splits and ``meta.json``.

    Args:
        out_dir (str | Path): Output folder (empty or absent unless
            ``force_overwrite``).
        crop_root (str | Path, optional): Folder with one sub-folder of
            crops per class of the source (``source=`` override, default
            ``'cric'``: :data:`CELL_CLASSES`; ``'herlev'``: the seven Herlev
            folders); defaults to the source's folder of the shared data.
        field_path (Path, optional): Real field for the background; defaults
            to ``tct_field/field_4096x2816.jpg`` beside ``crop_root``.
        preset (str): Key of :data:`PRESETS`.
        force_overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show a progress bar.
        **overrides: :class:`ROISetConfig` fields (``num_train=4``,
            ``source='herlev'``, ...).

    Returns:
        dict: ``{'out_dir', 'meta', 'annotations': {split: Path},
        'images': {split: Path}}``.
    """
    t0 = time.time()
    cfg = make_config(preset, **overrides)
    spec = SOURCES[cfg.source]
    if crop_root is None:
        crop_root = SHARED_DATA_ROOT / spec.crop_dir
    crop_root, out_dir = Path(crop_root).resolve(), Path(out_dir).resolve()
    if out_dir == crop_root or crop_root in out_dir.parents:
        raise ValueError(f'--out-dir {out_dir} is inside --crop-root '
                         f'{crop_root}; write the ROI set elsewhere')
    field_path = Path(field_path) if field_path else \
        crop_root.parent / FIELD_FILE
    crops_per_folder = list_crops(crop_root, cfg.source)
    bank = load_background_bank(field_path)
    prepare_out_dir(out_dir, force_overwrite, flag='--force-overwrite')
    folder_pools = split_crops(crops_per_folder, cfg.split_ratios, cfg.seed,
                               by_field=cfg.source == 'cric')
    pools = {s: pool_by_cell_class(folder_pools[s], spec.folder_to_cell_class)
             for s in SPLITS}
    crops = (TrimmedCropCache if spec.trim_borders else CropCache)(
        crop_root)
    root = crop_root.parent
    result = dict(out_dir=out_dir, meta=out_dir / 'meta.json',
                  annotations={}, images={})
    (out_dir / 'annotations').mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=sum(cfg.num_rois(s) for s in SPLITS), unit='roi',
               desc=f'ROIs {cfg.preset}', disable=not progress)
    counts, used, dropped = {}, {}, {}
    for split in SPLITS:
        pool, dropped_paths = usable_abnormal(pools[split], crops,
                                              cfg.min_crop_contrast)
        dropped[split] = sorted(_rel(p, root) for p in dropped_paths)
        img_dir = out_dir / 'images' / split
        coco, used_paths = build_split(cfg, split, pool, crops, bank, img_dir,
                                       bar)
        ann_file = out_dir / 'annotations' / f'{split}.json'
        ann_file.write_text(json.dumps(coco))
        result['annotations'][split], result['images'][split] = \
            ann_file, img_dir
        used[split] = sorted(_rel(p, root) for p in used_paths)
        counts[split] = split_counts(coco)
    bar.close()
    meta = dict(
        tool='tools/dataset_converters/build_roi_set.py',
        note=spec.note, source=cfg.source,
        config=asdict(cfg), crop_root=str(crop_root),
        background_field=str(field_path),
        roi_classes=list(ROI_CLASSES), cell_classes=list(spec.cell_classes),
        cell_to_roi_class=dict(spec.cell_to_roi_class),
        folder_to_cell_class=dict(spec.folder_to_cell_class),
        crops_per_folder={s: {f: [_rel(p, root) for p in ps]
                              for f, ps in folder_pools[s].items()}
                          for s in SPLITS},
        crops={s: {c: [_rel(p, root) for p in ps]
                   for c, ps in pools[s].items()} for s in SPLITS},
        used_crops=used, dropped_low_contrast_crops=dropped,
        counts=counts, build_seconds=round(time.time() - t0, 2))
    result['meta'].write_text(json.dumps(meta, indent=1))
    return result


def split_counts(coco: Dict) -> Dict:
    """ROIs per ROI class and cells per cell class of one annotation dict."""
    return dict(rois=len(coco['images']), rois_per_class=rois_per_class(coco),
                cells=len(coco['annotations']),
                cells_per_class=boxes_per_category(coco))


__all__ = ['list_crops', 'field_of', 'split_crops', 'pool_by_cell_class',
           'build_split', 'build_roi_set', 'split_counts']
