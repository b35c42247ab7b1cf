"""Compose mosaic images, write each split as COCO and the whole build with
its ``meta.json`` (:func:`build_mosaic_dataset`)."""
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from cervdet.datasets.classes import NORMAL_CLASS
from cervdet.utils.constants import SHARED_DATA_ROOT

from .backgrounds import (
    BackgroundBank,
    load_background_bank,
    paper_background,
    quilt_background,
)
from .config import MosaicConfig, class_names, make_config
from .placement import find_place, paste_cells, prepare_cell
from .sources import (
    FIELD_FILE,
    SPLITS,
    CropCache,
    list_source_crops,
    split_source_crops,
    usable_abnormal,
)


def compose_image(cfg: MosaicConfig, pool: Dict, crops: CropCache,
                  bank: BackgroundBank, rng: np.random.Generator,
                  negative: bool) -> Tuple[np.ndarray, List[Dict]]:
    """Compose one image and its boxes.

    Abnormal cells are placed first (so the first always fits), then normal
    cells; normals are drawn first and abnormals on top, so annotated cells
    are never covered by unannotated ones.

    Args:
        cfg (MosaicConfig): Build settings.
        pool (dict): ``{'abnormal': {cls: [Path]}, 'normal': [Path]}`` of the
            split.
        crops (CropCache): Crop reader.
        bank (BackgroundBank): Background source.
        rng (np.random.Generator): Random generator of this image.
        negative (bool): Compose without abnormal cells.

    Returns:
        tuple: ``(image, cells)``: BGR uint8 ``[S, S, 3]`` and a list of
        ``{'category': name, 'bbox': [x, y, w, h], 'area': int,
        'source': Path}`` for every pasted cell, normal (``NILM``) ones
        included.
    """
    size = cfg.img_size
    if cfg.background == 'field':
        canvas = quilt_background(bank, size, rng)
    else:
        canvas = paper_background(bank.colour, size, rng)
    n_cells = int(rng.integers(cfg.cells_per_image[0], cfg.cells_per_image[1] + 1))
    n_abn = 0 if negative else max(1, int(round(cfg.abnormal_fraction * n_cells)))
    classes = [c for c, p in pool['abnormal'].items() if p]
    if n_abn and not classes:
        raise RuntimeError('no abnormal crops in this split; lower --split-ratios '
                           'imbalance or check --data-root')
    if cfg.class_sampling == 'proportional':
        prob = np.array([len(pool['abnormal'][c]) for c in classes], np.float64)
    else:
        prob = np.ones(len(classes))

    def pick_abnormal() -> Tuple[str, Path]:
        """Draw an abnormal class, then one of its crops."""
        cls = classes[rng.choice(len(classes), p=prob / prob.sum())]
        paths = pool['abnormal'][cls]
        return cls, paths[rng.integers(len(paths))]

    picks = [pick_abnormal() for _ in range(n_abn)]
    normals = pool['normal']
    picks += [(NORMAL_CLASS, normals[rng.integers(len(normals))])
              for _ in range(n_cells - n_abn)]

    labels = np.zeros((size, size), np.int32)
    areas: List[int] = []
    placed = []
    spare = 20  # replacement crops for a positive image whose first cell fails
    for cls, path in picks:  # (picks may grow while iterating)
        first_abnormal = cls != NORMAL_CLASS and not any(
            c != NORMAL_CLASS for c, *_ in placed)
        cell = prepare_cell(crops(path), cfg, rng, bank.colour)
        pos = None
        if cell is not None:
            pixels, alpha = cell
            solid = alpha > 0.5
            pos = find_place(labels, areas, solid, rng, cfg.max_overlap,
                             200 if first_abnormal else 40)
        if pos is None:
            if first_abnormal and spare > 0:  # a positive image keeps >= 1
                spare -= 1
                picks.append(pick_abnormal())
            continue
        x, y = pos
        areas.append(int(solid.sum()))
        labels[y:y + solid.shape[0], x:x + solid.shape[1]][solid] = len(areas)
        placed.append((cls, path, pixels, alpha, x, y))

    return canvas, paste_cells(canvas, placed, NORMAL_CLASS)


def negative_flags(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Which of ``n`` images are negatives (no abnormal cell).

    At least one negative and one positive when ``n >= 2`` and the fraction
    is strictly between 0 and 1.

    Args:
        n (int): Number of images.
        fraction (float): Wanted share of negatives.
        rng (np.random.Generator): Random generator.

    Returns:
        np.ndarray: bool ``[n]``.
    """
    k = int(round(fraction * n))
    if n >= 2 and 0 < fraction < 1:
        k = min(max(k, 1), n - 1)
    flags = np.zeros(n, bool)
    flags[rng.permutation(n)[:k]] = True
    return flags


def build_split(cfg: MosaicConfig, split: str, pool: Dict, crops: CropCache,
                bank: BackgroundBank, img_dir: Path,
                bar: Optional[tqdm] = None) -> Dict:
    """Compose and write all images of one split; return its COCO dict.

    Args:
        cfg (MosaicConfig): Build settings.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        pool (dict): Source crops of the split.
        crops (CropCache): Crop reader.
        bank (BackgroundBank): Background source.
        img_dir (Path): Folder the images are written to.
        bar (tqdm | None): Progress bar advanced once per image.

    Returns:
        tuple: ``(coco, used)``: the COCO detection dict (``images``,
        ``annotations``, ``categories``, ``file_name`` relative to
        ``img_dir``) and the set of crop paths pasted in this split.
    """
    names = class_names(cfg)
    cat_id = {c: i + 1 for i, c in enumerate(names)}
    n = cfg.num_images(split)
    split_idx = SPLITS.index(split)
    negatives = negative_flags(n, cfg.negative_fraction,
                               np.random.default_rng([cfg.seed, split_idx, 104729]))
    coco = dict(images=[], annotations=[],
                categories=[dict(id=cat_id[c], name=c) for c in names])
    img_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_idx, i])
        img, cells = compose_image(cfg, pool, crops, bank, rng, bool(negatives[i]))
        file_name = f'{cfg.source}_{split}_{i:05d}.jpg'
        if not cv2.imwrite(str(img_dir / file_name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise IOError(f'cannot write {img_dir / file_name}')
        coco['images'].append(dict(id=i + 1, file_name=file_name, width=cfg.img_size,
                                   height=cfg.img_size, negative=bool(negatives[i])))
        used.update(c['source'] for c in cells)
        for c in cells:
            if c['category'] == NORMAL_CLASS and not cfg.annotate_normal:
                continue
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=i + 1,
                category_id=cat_id[c['category']], bbox=c['bbox'], area=c['area'],
                iscrowd=0))
        if bar is not None:
            bar.update(1)
    return coco, used


def prepare_out_dir(out_dir: Path, overwrite: bool,
                    flag: str = '--overwrite (overwrite=True)') -> None:
    """Refuse a non-empty ``out_dir`` unless ``overwrite``; then clear our
    files (``images/``, ``annotations/``, ``meta.json``).

    Args:
        out_dir (Path): Output folder of a build (created if absent).
        overwrite (bool): Allow replacing a previous build in ``out_dir``
            (other files in it are kept).
        flag (str): How the caller's user allows it (named in the error).

    Raises:
        FileExistsError: ``out_dir`` is a file, or is not empty and not
            ``overwrite``.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} is not empty; refusing to overwrite it. Pass '
                f'{flag} to replace a previous build, or choose another '
                '--out-dir.')
        for sub in ('images', 'annotations'):
            if (out_dir / sub).is_dir():
                shutil.rmtree(out_dir / sub)
        (out_dir / 'meta.json').unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a posix string."""
    return Path(path).resolve().relative_to(root).as_posix()


def build_mosaic_dataset(out_dir, data_root=SHARED_DATA_ROOT,
                         source: str = 'bethesda', preset: str = '512',
                         overwrite: bool = False, progress: bool = True,
                         **overrides) -> Dict:
    """Build a full mosaic data set (all three splits) and its ``meta.json``.

    Args:
        out_dir (str | Path): Output folder (must be empty or absent unless
            ``overwrite``).
        data_root (str | Path): Shared data folder with the real crops.
        source (str): ``'bethesda'`` or ``'tct11'``.
        preset (str): ``'512'`` or ``'1024'`` (defaults of the settings).
        overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show progress bars.
        **overrides: :class:`MosaicConfig` fields (e.g. ``num_train=4``,
            ``img_size=256``, ``background='paper'``, ``seed=1``).

    Returns:
        dict: ``{'out_dir', 'meta', 'annotations': {split: Path},
        'images': {split: Path}}``.
    """
    t0 = time.time()
    cfg = make_config(source, preset, **overrides)
    data_root, out_dir = Path(data_root).resolve(), Path(out_dir).resolve()
    if out_dir == data_root or data_root in out_dir.parents:
        raise ValueError(f'--out-dir {out_dir} is inside --data-root {data_root}; '
                         'write the mosaic elsewhere (the shared data stays read-only)')
    abnormal, normal = list_source_crops(data_root, cfg.source)
    bank = load_background_bank(data_root / FIELD_FILE)
    prepare_out_dir(out_dir, overwrite)
    pools = split_source_crops(abnormal, normal, cfg.split_ratios, cfg.seed)
    crops = CropCache(data_root)

    result = dict(out_dir=out_dir, meta=out_dir / 'meta.json', annotations={},
                  images={})
    counts, dropped, used = {}, {}, {}
    (out_dir / 'annotations').mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=sum(cfg.num_images(s) for s in SPLITS), unit='img',
               desc=f'mosaic {cfg.source}-{cfg.preset}', disable=not progress)
    for split in SPLITS:
        pool = dict(pools[split])
        pool['abnormal'], dropped[split] = usable_abnormal(
            pool['abnormal'], crops, cfg.min_crop_contrast)
        if cfg.annotate_normal:  # boxed normals need a visible cell too
            kept, lost = usable_abnormal({NORMAL_CLASS: pool['normal']}, crops,
                                         cfg.min_crop_contrast)
            pool['normal'], dropped[split] = kept[NORMAL_CLASS], dropped[split] + lost
        img_dir = out_dir / 'images' / split
        coco, used_paths = build_split(cfg, split, pool, crops, bank, img_dir, bar)
        used[split] = sorted(_rel(p, data_root) for p in used_paths)
        ann_file = out_dir / 'annotations' / f'{split}.json'
        ann_file.write_text(json.dumps(coco))
        result['annotations'][split], result['images'][split] = ann_file, img_dir
        counts[split] = _split_counts(coco)
    bar.close()

    meta = dict(
        tool='tools/dataset_converters/build_mosaic.py',
        note=('Detection images composed from real cell crops; the crops are '
              'real, the composition (placement, background, scale) is synthetic.'),
        config=asdict(cfg), data_root=str(data_root),
        classes=list(class_names(cfg)),
        background_field=FIELD_FILE, background_patch=bank.patch,
        background_colour_bgr=[round(float(c), 1) for c in bank.colour],
        crops={s: dict(abnormal={c: [_rel(p, data_root) for p in ps]
                                 for c, ps in pools[s]['abnormal'].items()},
                       normal=[_rel(p, data_root) for p in pools[s]['normal']])
               for s in SPLITS},
        used_crops=used,
        dropped_low_contrast_crops={s: [_rel(p, data_root) for p in dropped[s]]
                                    for s in SPLITS},
        counts=counts, build_seconds=round(time.time() - t0, 2))
    result['meta'].write_text(json.dumps(meta, indent=1))
    return result


def boxes_per_category(coco: Dict) -> Dict[str, int]:
    """Number of annotations of every category of a COCO dict.

    Args:
        coco (dict): COCO dict with ``categories`` and ``annotations``.

    Returns:
        dict[str, int]: ``{category name: annotations}`` in the order of
        ``categories`` (0 for a category without annotation).
    """
    id_to_name = {c['id']: c['name'] for c in coco['categories']}
    per_class = {n: 0 for n in id_to_name.values()}
    for a in coco['annotations']:
        per_class[id_to_name[a['category_id']]] += 1
    return per_class


def _split_counts(coco: Dict) -> Dict:
    """Images, negatives and boxes per class of one COCO split dict."""
    return dict(images=len(coco['images']),
                negatives=sum(bool(i.get('negative')) for i in coco['images']),
                boxes=len(coco['annotations']),
                boxes_per_class=boxes_per_category(coco))


__all__ = [
    'compose_image', 'negative_flags', 'build_split', 'prepare_out_dir',
    'build_mosaic_dataset', 'boxes_per_category'
]
