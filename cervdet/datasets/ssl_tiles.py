"""Unlabeled tiles for self-supervised pre-training, cut by the slide plan.

Input: image files, folders of fields, or whole-slide images (openslide or
tiffslide, see :mod:`cervdet.datasets.slide_readers`). Tiles are chosen by
the same rule as slide inference (:mod:`cervdet.datasets.slide_tiles`), so
a model pre-trained on them sees the tissue it will be run on:

1. :func:`~cervdet.datasets.slide_tiles.tissue_mask` once per input, on a
   thumbnail fine enough for at least 32 mask pixels per tile
   (:func:`mask_side`): saturation / darkness below the glass with Otsu
   thresholds clipped to ``[min_saturation | min_darkness, 40]``;
2. :func:`~cervdet.datasets.slide_tiles.plan_tiles`: the regular grid with
   step ``stride`` (the last row and column shifted inside the image, an
   input smaller than a tile gives one white-padded tile) and the tissue
   fraction of every tile from an integral image of the mask;
3. the tiles with a fraction of at least ``min_tissue`` are read one region
   at a time (:func:`~cervdet.datasets.slide_tiles.read_tile`: a slide is
   never decoded whole at level 0) and written as
   ``<stem>_x<X>_y<Y>.<format>`` (X, Y: level-0 top-left corner), with a
   manifest ``tiles.csv`` (file, source, x, y, level, footprint, tile size,
   tissue fraction) and ``tiles.json`` (arguments, counts per source).

Resolution: ``level`` reads tiles at that pyramid level; ``mpp`` picks the
level nearest above that many microns per pixel and resizes (needs the
slide's mpp, or ``source_mpp`` for plain images). An existing output is
never overwritten: ``resume`` keeps existing tiles and writes the missing
ones, ``force_overwrite`` rewrites them. Command line:
``tools/ssl/extract_tiles.py``.
"""
import csv
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .slide_readers import IMAGE_EXTS, WSI_EXTS, SlideReader, open_slide
from .slide_tiles import TilePlan, plan_tiles, read_tile, tissue_mask

MANIFEST_FIELDS = ('file', 'source', 'x', 'y', 'level', 'footprint',
                   'tile_size', 'tissue_fraction')


def scale_for(reader: SlideReader, level: Optional[int], mpp: Optional[float],
              source_mpp: Optional[float]) -> float:
    """Level-0 pixels per output pixel of the requested resolution.

    Args:
        reader (SlideReader): The opened image.
        level (int, optional): Requested pyramid level.
        mpp (float, optional): Requested microns per output pixel.
        source_mpp (float, optional): Level-0 mpp override (plain images).

    Returns:
        float: The read downsample (the tiles are read at
        ``reader.best_level_for_downsample`` of it, which is ``level``
        when a level is asked).
    """
    if mpp is not None:
        base = source_mpp if source_mpp is not None else reader.mpp
        if base is None:
            raise ValueError(f'{reader.path} has no microns-per-pixel '
                             'metadata: pass --source-mpp (level-0 mpp) or '
                             'use --level instead of --mpp')
        return float(mpp) / float(base)
    level = 0 if level is None else int(level)
    if not 0 <= level < reader.level_count:
        raise ValueError(f'--level {level} does not exist in {reader.path} '
                         f'({reader.level_count} level(s))')
    return float(reader.level_downsamples[level])


def mask_side(dimensions: Tuple[int, int], footprint: float,
              max_side: int = 2048) -> int:
    """Thumbnail side of the tissue mask: >= 32 mask px per tile side.

    Args:
        dimensions (tuple[int, int]): Level-0 ``(W, H)``.
        footprint (float): Tile side in level-0 px.
        max_side (int): Upper bound (px).

    Returns:
        int: Longest side of the thumbnail, in ``[64, max_side]``.
    """
    return int(min(max_side, max(64, 32 * max(dimensions) /
                                 max(footprint, 1))))


def list_inputs(inputs: Sequence[str]) -> List[Path]:
    """Image and slide files of ``inputs`` (folders searched recursively).

    Raises:
        FileNotFoundError: A missing input or a folder without images.
        ValueError: Two inputs share a file stem (tile names would clash).
    """
    exts = set(IMAGE_EXTS) | set(WSI_EXTS)
    files: List[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob('*')
                           if f.is_file() and f.suffix.lower() in exts)
            if not found:
                raise FileNotFoundError(f'no image or slide files in {p}')
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f'input {p} not found')
    stems: Dict[str, Path] = {}
    for f in files:
        if f.stem in stems and stems[f.stem] != f:
            raise ValueError(f'inputs {stems[f.stem]} and {f} share the stem '
                             f'{f.stem!r}: tile names would collide; rename '
                             'one or run them into different --out-dir')
        stems[f.stem] = f
    return list(dict.fromkeys(files))


def plan_input(reader: SlideReader, tile_size: int, stride: int,
               read_downsample: float, min_tissue: float,
               min_saturation: float = 20., min_darkness: float = 25.,
               max_mask_side: int = 2048) -> TilePlan:
    """Tissue mask and tile plan of one input (reads only a thumbnail).

    Args:
        reader (SlideReader): The opened input.
        tile_size (int): Output tile side (px).
        stride (int): Grid step in output px.
        read_downsample (float): Level-0 px per output px
            (:func:`scale_for`).
        min_tissue (float): Smallest tissue fraction of a kept tile.
        min_saturation (float): Floor of the saturation threshold.
        min_darkness (float): Floor of the darkness-below-glass threshold.
        max_mask_side (int): Largest thumbnail side of the mask.

    Returns:
        TilePlan: See :func:`~cervdet.datasets.slide_tiles.plan_tiles`.
    """
    side = mask_side(reader.dimensions, tile_size * read_downsample,
                     max_mask_side)
    mask, mask_ds = tissue_mask(reader, max_side=side,
                                min_saturation=min_saturation,
                                min_darkness=min_darkness)
    return plan_tiles(reader.dimensions, tile_size, 0, read_downsample,
                      mask=mask, mask_downsample=mask_ds,
                      min_tissue=min_tissue, stride=stride)


def extract_tiles(inputs: Sequence[str], out_dir: Path, tile_size: int = 256,
                  stride: Optional[int] = None, level: Optional[int] = None,
                  mpp: Optional[float] = None,
                  source_mpp: Optional[float] = None,
                  min_tissue: float = 0.3, max_tiles: Optional[int] = None,
                  fmt: str = 'jpg', seed: int = 0, backend: str = 'auto',
                  resume: bool = False, force_overwrite: bool = False,
                  min_saturation: float = 20., min_darkness: float = 25.,
                  jpeg_quality: int = 95, progress: bool = True) -> Dict:
    """Extract the tissue tiles of every input; see the module docstring.

    Args:
        inputs (Sequence[str]): Files or folders.
        out_dir (Path): Output folder (tiles and manifests).
        tile_size (int): Output tile side (px).
        stride (int, optional): Grid step in output px (default
            ``tile_size``).
        level (int, optional): Pyramid level to read (default 0).
        mpp (float, optional): Target microns per pixel (not with
            ``level``).
        source_mpp (float, optional): Level-0 mpp of plain images.
        min_tissue (float): Smallest tissue fraction of a kept tile.
        max_tiles (int, optional): At most this many tiles per input
            (random, ``seed``).
        fmt (str): ``'jpg'`` or ``'png'``.
        seed (int): Seed of the ``max_tiles`` choice.
        backend (str): Reader backend (:func:`open_slide`).
        resume (bool): Keep existing tiles, write the missing ones.
        force_overwrite (bool): Rewrite existing tiles and manifests.
        min_saturation (float): Floor of the mask's saturation threshold.
        min_darkness (float): Floor of the mask's darkness threshold
            (grey levels below the glass).
        jpeg_quality (int): JPEG quality.
        progress (bool): Show a progress bar.

    Returns:
        dict: ``kept``, ``skipped_background``, ``existing`` (resumed),
        ``per_source`` counts, ``seconds``, the manifest paths and ``rows``.
    """
    if fmt not in ('jpg', 'png'):
        raise ValueError(f'--format must be jpg or png, got {fmt!r}')
    if not 0. <= min_tissue <= 1.:
        raise ValueError(f'--min-tissue must be in [0, 1], got {min_tissue}')
    if level is not None and mpp is not None:
        raise ValueError('give --level or --mpp, not both')
    stride = tile_size if stride is None else stride
    files = list_inputs(inputs)
    out_dir = Path(out_dir)
    manifest_csv, manifest_json = out_dir / 'tiles.csv', out_dir / 'tiles.json'
    if manifest_csv.exists() and not (resume or force_overwrite):
        raise FileExistsError(
            f'{out_dir} already holds tiles ({manifest_csv.name}): pass '
            '--resume to add the missing tiles or --force-overwrite to '
            'rewrite them, or choose another --out-dir')
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    # one input at a time (a decoded plain field is freed before the next);
    # the bar total grows as each input is planned
    bar = tqdm(total=0, unit='tile', disable=not progress, desc='tiles')
    rows, per_source = [], {}
    kept = skipped = existing = 0
    params = ([cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
              if fmt == 'jpg' else [])
    for file_idx, f in enumerate(files):
        with open_slide(f, backend=backend, mpp=source_mpp) as reader:
            scale = scale_for(reader, level, mpp, source_mpp)
            plan = plan_input(reader, tile_size, stride, scale, min_tissue,
                              min_saturation, min_darkness)
            read_level = reader.best_level_for_downsample(scale)
            footprint = int(round(plan.footprint))
            idx = plan.kept_indices
            if max_tiles is not None and idx.size > max_tiles:
                rng = np.random.default_rng([seed, file_idx])
                idx = idx[np.sort(rng.choice(idx.size, max_tiles,
                                             replace=False))]
            bar.total += int(idx.size)
            bar.refresh()
            n_grid = len(plan)
            n_bg = int((~plan.keep).sum())
            n_new = n_old = 0
            for (x, y), frac in zip(plan.origins[idx], plan.tissue[idx]):
                name = f'{f.stem}_x{int(x)}_y{int(y)}.{fmt}'
                path = out_dir / name
                if path.exists() and not force_overwrite:
                    if not resume:
                        raise FileExistsError(
                            f'tile {path} exists: pass --resume or '
                            '--force-overwrite')
                    n_old += 1
                else:
                    tile = read_tile(reader, x, y, tile_size, scale)
                    if not cv2.imwrite(str(path), tile[..., ::-1], params):
                        raise OSError(f'cannot write {path}')
                    n_new += 1
                rows.append(dict(file=name, source=str(f), x=int(x), y=int(y),
                                 level=read_level, footprint=footprint,
                                 tile_size=tile_size,
                                 tissue_fraction=round(float(frac), 4)))
                bar.update(1)
        per_source[str(f)] = dict(grid=n_grid, background=n_bg,
                                  written=n_new, existing=n_old,
                                  not_selected=n_grid - n_bg - n_new - n_old)
        kept += n_new + n_old
        skipped += n_bg
        existing += n_old
    bar.close()
    with open(manifest_csv, 'w', newline='') as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    summary = dict(
        tool='tools/ssl/extract_tiles.py',
        args=dict(inputs=[str(i) for i in inputs], tile_size=tile_size,
                  stride=stride, level=level, mpp=mpp, source_mpp=source_mpp,
                  min_tissue=min_tissue, max_tiles=max_tiles, format=fmt,
                  seed=seed, mask='slide_tiles.tissue_mask saturation-otsu',
                  min_saturation=min_saturation, min_darkness=min_darkness),
        kept=kept, skipped_background=skipped, existing=existing,
        per_source=per_source, seconds=round(time.time() - t0, 2))
    manifest_json.write_text(json.dumps(summary, indent=1))
    return dict(summary, manifest_csv=manifest_csv,
                manifest_json=manifest_json, rows=rows)


__all__ = ['extract_tiles', 'list_inputs', 'plan_input', 'mask_side',
           'scale_for', 'MANIFEST_FIELDS']
