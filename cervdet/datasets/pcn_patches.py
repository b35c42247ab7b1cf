"""Build the Patch Correction Network's (PCN) patch set from a COCO detection set.

Stage 2 of Fei et al. (MICCAI 2023) trains the PCN, a patch classifier, on
224x224 patches: positives around the ground-truth boxes of abnormal cells,
negatives around normal cells and on background. This module cuts those
patches out of a COCO detection set with the *same* code the detector uses in
stage 3 (:func:`cervdet.models.layers.patch_regions` and
:func:`cervdet.models.layers.crop_patches`), so the PCN is trained on exactly
the kind of patch it is shown during distillation.

The paper trains the PCN on "a new dataset of 5000 positive and negative
224x224 cell patches" collected apart from the detection images (Sec. 3.1).
From a set with annotated fields (the CRIC fields of
``tools/dataset_converters/cric_to_coco.py``) build it from the *train and
val fields only* and name the detector's test split in ``--forbid-fields``:
any field of that file found among the patch splits is an error, so no test
field reaches the PCN (splits are per field, as the COCO files are).

Negatives:

- boxes of categories named in ``--normal-classes`` (e.g. ``NILM``), when the
  set annotates normal cells;
- marked cells that are not boxes of the label set (``images[].other_points``
  of the CRIC COCO files, e.g. the NILM cells of the ``abnormal5`` set), when
  their ``bethesda_class`` is a normal class: a box of an abnormal-box size
  centred on the marked nucleus. Points of other classes are kept clear of
  negatives like abnormal boxes;
- unannotated cells: dark objects (nuclei, cell bodies: Otsu threshold of the
  grey image, connected components) whose centre lies outside every abnormal
  box;
- background: random positions.

Negative boxes get the sizes of the split's abnormal boxes (sampled), so that
positives and negatives do not differ by scale. Every negative box overlaps
every abnormal box by IoU < ``--neg-max-iou``. Positives are the boxes
themselves (``--pos-per-box`` copies, all but the first jittered); negatives
are jittered too.

Output (loadable by mmpretrain's ``CustomDataset`` with ``ann_file``)::

    OUT/images/<split>/<class>/<image stem>_<k>.jpg   # patch-size JPEGs
    OUT/meta/<split>.txt      # "images/<split>/<class>/<file>.jpg <label>"
    OUT/classes.txt           # class names in label order
    OUT/meta.json             # arguments and counts per split and class

Labels: ``--label-mode binary``: ``normal`` = 0, ``abnormal`` = 1;
``multiclass``: ``normal`` = 0, then the abnormal COCO categories in id order.

``tools/dataset_converters/build_pcn_patches.py`` is the command line.
Example (a mosaic set of :mod:`cervdet.datasets.synthesis`)::

    python tools/dataset_converters/build_pcn_patches.py \\
        --coco-root data/cervical-mosaic-bethesda-1024 \\
        --out-dir data/cervical-pcn-patches-1024

The real CRIC fields (images in one folder, splits per field)::

    python tools/dataset_converters/build_pcn_patches.py \\
        --coco-root data/cric-cervix --splits train val \\
        --img-dir data/cric-cervix/images \\
        --forbid-fields data/cric-cervix/annotations/test.json \\
        --out-dir data/cric-pcn-patches
"""
import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

from cervdet.evaluation.metrics.corloc_metric import box_iou
from cervdet.models.layers.patch_crop import crop_patches, patch_regions
from cervdet.utils.constants import IMAGENET_MEAN

#: BGR value of the pixels outside an image: the ImageNet mean that the
#: detector's data preprocessor subtracts, i.e. what a normalised input of 0
#: (padding, or RoIAlign outside the image in stage 3) stands for.
IMAGENET_MEAN_BGR: Tuple[float, float, float] = tuple(IMAGENET_MEAN[::-1])
NORMAL_LABEL = 'normal'


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator, shift: float,
                 scale: float) -> np.ndarray:
    """Randomly shift (``+-shift`` x side) and rescale (``x [1/(1+s), 1+s]``).

    Args:
        boxes (np.ndarray[N, 4]): Boxes.
        rng (np.random.Generator): Random generator.
        shift (float): Largest centre shift as a fraction of each side.
        scale (float): Largest relative size change.

    Returns:
        np.ndarray[N, 4]: Jittered boxes.
    """
    if len(boxes) == 0:
        return boxes
    ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = boxes[:, 2:] - boxes[:, :2]
    ctr = ctr + rng.uniform(-shift, shift, size=ctr.shape) * wh
    wh = wh * np.exp(rng.uniform(-np.log1p(scale), np.log1p(scale),
                                 size=(len(boxes), 1)))
    return np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)


def dark_object_centres(img: np.ndarray, min_area: int = 30) -> np.ndarray:
    """Centres of dark objects (cells, nuclei) of a cytology image.

    Args:
        img (np.ndarray): BGR uint8 image ``[H, W, 3]``.
        min_area (int): Smallest object area in pixels.

    Returns:
        np.ndarray[N, 2]: ``(x, y)`` centroids.
    """
    gray = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, centroids = cv2.connectedComponentsWithStats(mask, 8)
    keep = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return centroids[1:][keep].astype(np.float64)


def boxes_at(centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boxes of ``sizes`` ``[N, 2]`` (w, h) centred on ``centres`` ``[N, 2]``."""
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def sample_negative_boxes(img: np.ndarray, abnormal: np.ndarray,
                          normal: np.ndarray, size_pool: np.ndarray,
                          num: int, rng: np.random.Generator,
                          cell_fraction: float = 0.7,
                          max_iou: float = 0.1) -> Tuple[np.ndarray, List[str]]:
    """Negative boxes of one image: normal cells first, then background.

    Args:
        img (np.ndarray): BGR image ``[H, W, 3]``.
        abnormal (np.ndarray[A, 4]): Abnormal boxes.
        normal (np.ndarray[M, 4]): Annotated normal-cell boxes.
        size_pool (np.ndarray[P, 2]): ``(w, h)`` to sample negative sizes from.
        num (int): Number of negatives wanted.
        rng (np.random.Generator): Random generator.
        cell_fraction (float): Share of negatives centred on cells (annotated
            normal ones, then dark objects), the rest at random positions.
        max_iou (float): Largest IoU of a negative with any abnormal box.

    Returns:
        tuple: ``(boxes [n, 4], sources)`` with ``n <= num`` and ``sources``
        ``'normal_box' | 'cell' | 'background'`` per box.
    """
    h, w = img.shape[:2]
    if num <= 0:
        return np.zeros((0, 4)), []

    def _ok(boxes):
        if len(boxes) == 0:
            return np.zeros(0, bool)
        ctr = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside_abn = np.zeros(len(boxes), bool)
        if len(abnormal):
            inside_abn = ((ctr[:, None, 0] >= abnormal[None, :, 0])
                          & (ctr[:, None, 0] <= abnormal[None, :, 2])
                          & (ctr[:, None, 1] >= abnormal[None, :, 1])
                          & (ctr[:, None, 1] <= abnormal[None, :, 3])).any(1)
        iou_ok = (box_iou(boxes, abnormal).max(1) < max_iou) if len(abnormal) \
            else np.ones(len(boxes), bool)
        in_img = (ctr[:, 0] >= 0) & (ctr[:, 0] < w) & (ctr[:, 1] >= 0) & \
            (ctr[:, 1] < h)
        return iou_ok & ~inside_abn & in_img

    def _sizes(n):
        return size_pool[rng.integers(len(size_pool), size=n)]

    out, src = [], []
    n_cell = int(round(num * cell_fraction))
    normal = normal[_ok(normal)] if len(normal) else normal
    if len(normal):
        pick = rng.permutation(len(normal))[:n_cell]
        out.append(normal[pick])
        src += ['normal_box'] * len(pick)
    n_more = n_cell - sum(len(o) for o in out)
    if n_more > 0:
        centres = dark_object_centres(img)
        cand = boxes_at(centres, _sizes(len(centres))) if len(centres) else \
            np.zeros((0, 4))
        cand = cand[_ok(cand)]
        pick = rng.permutation(len(cand))[:n_more]
        out.append(cand[pick])
        src += ['cell'] * len(pick)
    n_bg = num - sum(len(o) for o in out)
    if n_bg > 0:
        # oversample, keep the first that pass the overlap test
        centres = rng.uniform([0, 0], [w, h], size=(4 * n_bg + 8, 2))
        cand = boxes_at(centres, _sizes(len(centres)))
        cand = cand[_ok(cand)][:n_bg]
        out.append(cand)
        src += ['background'] * len(cand)
    boxes = np.concatenate(out, 0) if out else np.zeros((0, 4))
    return boxes, src


def point_boxes(points: Sequence[Dict], normal_classes: Sequence[str],
                size_pool: np.ndarray, rng: np.random.Generator
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes around the marked cells of ``images[].other_points``.

    Args:
        points (Sequence[dict]): ``{"point": [x, y], "bethesda_class": str}``
            entries (CRIC COCO contract).
        normal_classes (Sequence[str]): Classes whose points are negatives.
        size_pool (np.ndarray[P, 2]): ``(w, h)`` to draw the box sizes from.
        rng (np.random.Generator): Random generator.

    Returns:
        tuple: ``(normal [n, 4], other [m, 4])`` boxes centred on the points:
        of a normal class, and of any other class (to be avoided).
    """
    if not points:
        return np.zeros((0, 4)), np.zeros((0, 4))
    try:
        xy = np.array([p['point'] for p in points], np.float64).reshape(-1, 2)
        is_normal = np.array([p['bethesda_class'] in normal_classes
                              for p in points], bool)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            'images[].other_points entries must be {"point": [x, y], '
            f'"bethesda_class": str, ...}} (CRIC COCO contract): {e!r}')
    boxes = boxes_at(xy, size_pool[rng.integers(len(size_pool),
                                                size=len(xy))])
    return boxes[is_normal], boxes[~is_normal]


def field_key(info: Dict) -> str:
    """Identity of a field: its CRIC image id when given, else its stem."""
    if 'cric_image_id' in info:
        return f"cric:{info['cric_image_id']}"
    return Path(info['file_name']).stem


def load_coco_split(ann_file: Path, normal_classes: Sequence[str]
                    ) -> Tuple[Dict, List[Dict], List[str], Dict[int, str]]:
    """Read a COCO detection file.

    Returns:
        tuple: ``(images_by_id, annotations, abnormal_names, cat_names)``;
        ``abnormal_names`` are the categories not in ``normal_classes``, in
        id order; ``cat_names`` maps category id to name.
    """
    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise FileNotFoundError(f'COCO annotation file {ann_file} not found')
    coco = json.loads(ann_file.read_text())
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'{ann_file} is not a COCO detection file: no '
                             f'"{key}" field')
    cats = sorted(coco['categories'], key=lambda c: c['id'])
    abnormal = [c['name'] for c in cats if c['name'] not in normal_classes]
    return ({im['id']: im for im in coco['images']}, coco['annotations'],
            abnormal, {c['id']: c['name'] for c in cats})


def build_pcn_patches(out_dir, splits: Dict[str, Tuple[Path, Path]],
                      label_mode: str = 'binary',
                      normal_classes: Sequence[str] = ('NILM', 'normal'),
                      patch_size: int = 224, patch_scale: float = 1.5,
                      square: bool = True, min_size: float = 0.,
                      pos_per_box: int = 2, neg_per_pos: float = 1.0,
                      min_neg_per_image: int = 2, jitter_shift: float = 0.1,
                      jitter_scale: float = 0.1, cell_fraction: float = 0.7,
                      neg_max_iou: float = 0.1,
                      fill_bgr: Sequence[float] = IMAGENET_MEAN_BGR,
                      forbid_fields: Sequence[Path] = (),
                      seed: int = 0, jpeg_quality: int = 95,
                      overwrite: bool = False, progress: bool = True) -> Dict:
    """Cut PCN patches out of COCO detection splits.

    Args:
        out_dir (str | Path): Output folder (empty or absent unless
            ``overwrite``).
        splits (dict): ``{split name: (COCO json, image folder)}``.
        label_mode (str): ``'binary'`` or ``'multiclass'`` (see module doc).
        normal_classes (Sequence[str]): Category names that are normal cells.
        patch_size (int): Side of the written patches (the PCN input).
        patch_scale (float): Context factor of :func:`patch_regions`; must be
            the detector's ``model.patch_cfg.scale``.
        square (bool): Square regions (``model.patch_cfg.square``).
        min_size (float): Smallest region side (``model.patch_cfg.min_size``).
        pos_per_box (int): Patches per abnormal box (1 exact + jittered).
        neg_per_pos (float): Negatives per positive patch, per image.
        min_neg_per_image (int): Negatives of an image with no positive.
        jitter_shift (float): Centre jitter as a fraction of the box side.
        jitter_scale (float): Relative size jitter.
        cell_fraction (float): Share of negatives centred on cells.
        neg_max_iou (float): Largest IoU of a negative with an abnormal box.
        fill_bgr (Sequence[float]): Colour outside the image (BGR).
        forbid_fields (Sequence[Path]): COCO files (the detector's test
            split) whose fields must not be in any patch split; a field is
            identified by ``cric_image_id`` when present, else by the stem of
            ``file_name``.
        seed (int): Seed of all random choices.
        jpeg_quality (int): JPEG quality of the patches.
        overwrite (bool): Replace a previous build in ``out_dir``.
        progress (bool): Show a progress bar.

    Returns:
        dict: ``{'out_dir', 'classes', 'ann_files': {split: Path},
        'counts': {split: {class: n}}, 'sources': {split: {source: n}}}``.
    """
    if label_mode not in ('binary', 'multiclass'):
        raise ValueError('--label-mode must be binary or multiclass, got '
                         f'{label_mode!r}')
    if pos_per_box < 1:
        raise ValueError('--pos-per-box must be >= 1')
    if not splits:
        raise ValueError('no split given: pass --coco-root or --split')
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} is not empty; pass --overwrite to replace a '
                'previous build or choose another --out-dir')
        for sub in ('images', 'meta'):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    t0 = time.time()
    loaded = {s: load_coco_split(a, normal_classes)
              for s, (a, _) in splits.items()}
    for forbid in forbid_fields:
        banned = {field_key(im): im['file_name']
                  for im in load_coco_split(forbid, normal_classes)[0].values()}
        for s, (images, _, _, _) in loaded.items():
            clash = sorted(banned[field_key(im)] for im in images.values()
                           if field_key(im) in banned)
            if clash:
                raise ValueError(
                    f'split {s} ({splits[s][0]}) holds {len(clash)} field(s) '
                    f'of {forbid} (--forbid-fields), e.g. {clash[:3]}: the '
                    'PCN must not see the detector\'s test fields. Build the '
                    'patches from the train/val splits only (--splits train '
                    'val).')
    abnormal_names = next(iter(loaded.values()))[2]
    for s, (_, _, names, _) in loaded.items():
        if names != abnormal_names:
            raise ValueError(f'split {s} has categories {names}, the first '
                             f'split {abnormal_names}: build splits of one set')
    if label_mode == 'binary':
        classes = [NORMAL_LABEL, 'abnormal']
    else:
        classes = [NORMAL_LABEL] + list(abnormal_names)
    (out_dir / 'meta').mkdir(parents=True, exist_ok=True)
    (out_dir / 'classes.txt').write_text('\n'.join(classes) + '\n')

    result = dict(out_dir=out_dir, classes=classes, ann_files={}, counts={},
                  sources={})
    total = sum(len(v[0]) for v in loaded.values())
    bar = tqdm(total=total, unit='img', desc='pcn patches', disable=not progress)
    for split_idx, (split, (ann_file, img_dir)) in enumerate(splits.items()):
        images, anns, _, cat_names = loaded[split]
        by_img: Dict[int, List[Dict]] = {i: [] for i in images}
        for a in anns:
            if a.get('iscrowd', 0):
                continue
            by_img.setdefault(a['image_id'], []).append(a)
        # sizes of the split's abnormal boxes, for negatives
        sizes = np.array([a['bbox'][2:4] for a in anns
                          if cat_names[a['category_id']] not in normal_classes
                          and not a.get('iscrowd', 0)], np.float64)
        if len(sizes) == 0:
            raise ValueError(f'{ann_file} has no abnormal box: cannot build '
                             'positives (are all categories in --normal-classes?)')
        lines, counts, sources = [], Counter(), Counter()
        for cls in classes:
            (out_dir / 'images' / split / cls).mkdir(parents=True, exist_ok=True)
        for k, img_id in enumerate(sorted(images)):
            info = images[img_id]
            path = Path(img_dir) / info['file_name']
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f'cannot read image {path} (listed in '
                                        f'{ann_file}); check the image folder')
            rng = np.random.default_rng([seed, split_idx, k])
            abn, abn_lbl, nrm = [], [], []
            for a in by_img.get(img_id, []):
                x, y, bw, bh = a['bbox']
                name = cat_names[a['category_id']]
                box = [x, y, x + bw, y + bh]
                if name in normal_classes:
                    nrm.append(box)
                else:
                    abn.append(box)
                    abn_lbl.append(1 if label_mode == 'binary'
                                   else 1 + abnormal_names.index(name))
            abn = np.array(abn, np.float64).reshape(-1, 4)
            nrm = np.array(nrm, np.float64).reshape(-1, 4)
            # marked cells that are not boxes of this label set (CRIC)
            pt_nrm, pt_other = point_boxes(info.get('other_points') or [],
                                           normal_classes, sizes, rng)
            nrm = np.concatenate([nrm, pt_nrm], 0)
            avoid = np.concatenate([abn, pt_other], 0)
            pos = np.repeat(abn, pos_per_box, axis=0)
            pos_lbl = np.repeat(np.array(abn_lbl, np.int64), pos_per_box)
            jit = np.tile(np.arange(pos_per_box) > 0, len(abn))
            pos[jit] = jitter_boxes(pos[jit], rng, jitter_shift, jitter_scale)
            n_neg = int(round(neg_per_pos * len(pos))) if len(pos) else \
                min_neg_per_image
            neg, neg_src = sample_negative_boxes(
                img, avoid, nrm, sizes, n_neg, rng, cell_fraction, neg_max_iou)
            neg = jitter_boxes(neg, rng, jitter_shift, jitter_scale)
            boxes = np.concatenate([pos, neg], 0)
            labels = np.concatenate([pos_lbl, np.zeros(len(neg), np.int64)])
            sources.update(['abnormal_box'] * len(pos) + neg_src)
            if len(boxes):
                regions = patch_regions(torch.from_numpy(boxes).float(),
                                        scale=patch_scale, square=square,
                                        min_size=min_size)
                rois = torch.cat([torch.zeros(len(boxes), 1), regions], 1)
                tensor = torch.from_numpy(img).permute(2, 0, 1)[None].float()
                crops = crop_patches(tensor, rois, patch_size, fill=fill_bgr)
                crops = crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1)
                crops = crops.numpy()
                stem = Path(info['file_name']).stem
                for j, (crop, lbl) in enumerate(zip(crops, labels)):
                    rel = f'images/{split}/{classes[lbl]}/{stem}_{j:03d}.jpg'
                    if not cv2.imwrite(str(out_dir / rel), crop,
                                       [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                        raise IOError(f'cannot write {out_dir / rel}')
                    lines.append(f'{rel} {int(lbl)}')
                    counts[classes[lbl]] += 1
            bar.update(1)
        ann_out = out_dir / 'meta' / f'{split}.txt'
        ann_out.write_text('\n'.join(lines) + ('\n' if lines else ''))
        result['ann_files'][split] = ann_out
        result['counts'][split] = {c: counts[c] for c in classes}
        result['sources'][split] = dict(sources)
    bar.close()
    meta = dict(
        tool='tools/dataset_converters/build_pcn_patches.py',
        splits={s: dict(ann_file=str(a), img_dir=str(i))
                for s, (a, i) in splits.items()},
        classes=classes, label_mode=label_mode,
        normal_classes=list(normal_classes),
        patch=dict(size=patch_size, scale=patch_scale, square=square,
                   min_size=min_size, fill_bgr=list(fill_bgr)),
        sampling=dict(pos_per_box=pos_per_box, neg_per_pos=neg_per_pos,
                      min_neg_per_image=min_neg_per_image,
                      jitter_shift=jitter_shift, jitter_scale=jitter_scale,
                      cell_fraction=cell_fraction, neg_max_iou=neg_max_iou,
                      seed=seed),
        forbid_fields=[str(f) for f in forbid_fields],
        counts=result['counts'], sources=result['sources'],
        build_seconds=round(time.time() - t0, 2))
    (out_dir / 'meta.json').write_text(json.dumps(meta, indent=1))
    return result


__all__ = ['IMAGENET_MEAN_BGR', 'NORMAL_LABEL', 'box_iou', 'jitter_boxes',
           'dark_object_centres', 'boxes_at', 'sample_negative_boxes',
           'point_boxes', 'field_key', 'load_coco_split', 'build_pcn_patches']
