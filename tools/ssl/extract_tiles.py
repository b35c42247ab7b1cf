"""Cut unlabeled tiles on a regular grid from large images, skipping glass.

Input: image files, folders of fields, or whole-slide images (openslide or
tiffslide, see ``cervdet/datasets/slide_readers.py``). For each input a
cheap tissue mask is computed **once** on a thumbnail (a pixel is tissue when
it is darker than the bright glass by ``--glass-delta`` grey levels or
stained, i.e. its ``max - min`` over RGB exceeds ``--min-chroma``); the
tissue fraction of every grid tile then comes from an integral image of that
mask (vectorised over the grid). Tiles with a fraction below
``--min-tissue`` are skipped; the others are read one region at a time (a
slide is never decoded whole at level 0) and written as
``<stem>_x<X>_y<Y>.<format>`` (X, Y: level-0 top-left corner), with a
manifest ``tiles.csv`` (file, source, x, y, level, footprint, tile size,
tissue fraction) and ``tiles.json`` (arguments, counts per source).

Example (the shared real ThinPrep field)::

    python tools/ssl/extract_tiles.py ../shared/data/tct_field \\
        --out-dir data/ssl-tiles-256 --tile-size 256 --min-tissue 0.3

Resolution: ``--level L`` reads tiles at pyramid level L; ``--mpp M`` picks
the level nearest above M microns per pixel and resizes (needs the slide's
mpp, or ``--source-mpp`` for plain images). An existing output is never
overwritten: ``--resume`` keeps existing tiles and writes the missing ones,
``--force-overwrite`` rewrites them.
"""
import argparse
import csv
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _slide_readers():
    """``cervdet.datasets.slide_readers`` without importing torch/mmdet."""
    path = PROJECT_ROOT / 'cervdet' / 'datasets' / 'slide_readers.py'
    if not path.is_file():
        from cervdet.datasets import slide_readers
        return slide_readers
    spec = importlib.util.spec_from_file_location('_cervdet_slide_readers',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readers = _slide_readers()
MANIFEST_FIELDS = ('file', 'source', 'x', 'y', 'level', 'footprint',
                   'tile_size', 'tissue_fraction')


# ----------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------
def tissue_mask(rgb: np.ndarray, glass_delta: float = 25.,
                min_chroma: float = 25., glass_percentile: float = 99.
                ) -> np.ndarray:
    """Tissue (non-glass) mask of a low-resolution RGB image.

    The glass level is the ``glass_percentile`` of the grey levels (glass is
    the brightest thing on a slide); a pixel is tissue when it is at least
    ``glass_delta`` darker than that, or stained (``max - min`` of its RGB
    above ``min_chroma``). A 3x3 closing fills one-pixel gaps.

    Args:
        rgb (np.ndarray[H, W, 3]): uint8 thumbnail.
        glass_delta (float): Grey-level distance from the glass.
        min_chroma (float): Smallest RGB spread of stained pixels.
        glass_percentile (float): Percentile taken as the glass level.

    Returns:
        np.ndarray[H, W]: bool, True on tissue.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'tissue_mask needs an RGB image [H, W, 3], got '
                         f'shape {rgb.shape}')
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    glass = float(np.percentile(gray, glass_percentile))
    chroma = rgb.max(2).astype(np.int16) - rgb.min(2).astype(np.int16)
    mask = ((glass - gray) > glass_delta) | (chroma > min_chroma)
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE,
                            np.ones((3, 3), np.uint8))
    return mask.astype(bool)


def tile_grid(width: int, height: int, footprint: int,
              stride: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-left corners of the full tiles of a regular grid.

    Args:
        width (int): Level-0 width of the image.
        height (int): Level-0 height.
        footprint (int): Tile side in level-0 pixels.
        stride (int): Grid step in level-0 pixels.

    Returns:
        tuple[np.ndarray[Nx], np.ndarray[Ny]]: x and y corners (tiles that
        would cross the border are left out).
    """
    if footprint < 1 or stride < 1:
        raise ValueError(f'tile footprint and stride must be >= 1, got '
                         f'{footprint} and {stride}')
    xs = np.arange(0, width - footprint + 1, stride, dtype=np.int64)
    ys = np.arange(0, height - footprint + 1, stride, dtype=np.int64)
    return xs, ys


def tile_tissue_fractions(mask: np.ndarray, downsample: float,
                          xs: np.ndarray, ys: np.ndarray,
                          footprint: int) -> np.ndarray:
    """Tissue fraction of every grid tile from a low-resolution mask.

    Args:
        mask (np.ndarray[h, w]): bool tissue mask of the thumbnail.
        downsample (float): Level-0 pixels per mask pixel.
        xs (np.ndarray[Nx]): Level-0 x corners.
        ys (np.ndarray[Ny]): Level-0 y corners.
        footprint (int): Tile side in level-0 pixels.

    Returns:
        np.ndarray[Ny, Nx]: float in [0, 1].
    """
    h, w = mask.shape
    integral = cv2.integral(mask.astype(np.uint8)).astype(np.float64)
    x0 = np.clip(np.round(xs / downsample), 0, w).astype(np.int64)
    x1 = np.clip(np.round((xs + footprint) / downsample), 0, w).astype(np.int64)
    y0 = np.clip(np.round(ys / downsample), 0, h).astype(np.int64)
    y1 = np.clip(np.round((ys + footprint) / downsample), 0, h).astype(np.int64)
    x1, y1 = np.maximum(x1, np.minimum(x0 + 1, w)), \
        np.maximum(y1, np.minimum(y0 + 1, h))
    # box sums for all tiles at once: [Ny, 1] x [1, Nx] corner lookups
    total = (integral[y1[:, None], x1[None]] - integral[y0[:, None], x1[None]]
             - integral[y1[:, None], x0[None]] + integral[y0[:, None], x0[None]])
    area = (y1 - y0)[:, None] * (x1 - x0)[None]
    return np.divide(total, area, out=np.zeros_like(total), where=area > 0)


def scale_for(reader, level: Optional[int], mpp: Optional[float],
              source_mpp: Optional[float]) -> Tuple[float, int]:
    """Level-0 pixels per output pixel, and the level to read from.

    Args:
        reader (SlideReader): The opened image.
        level (int, optional): Requested pyramid level.
        mpp (float, optional): Requested microns per output pixel.
        source_mpp (float, optional): Level-0 mpp override (plain images).

    Returns:
        tuple[float, int]: ``(scale, read_level)``.
    """
    if mpp is not None:
        base = source_mpp if source_mpp is not None else reader.mpp
        if base is None:
            raise ValueError(f'{reader.path} has no microns-per-pixel '
                             'metadata: pass --source-mpp (level-0 mpp) or '
                             'use --level instead of --mpp')
        scale = mpp / base
        return scale, reader.best_level_for_downsample(scale)
    level = 0 if level is None else int(level)
    if not 0 <= level < reader.level_count:
        raise ValueError(f'--level {level} does not exist in {reader.path} '
                         f'({reader.level_count} level(s))')
    return float(reader.level_downsamples[level]), level


# ----------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------
def list_inputs(inputs: Sequence[str]) -> List[Path]:
    """Files of ``inputs`` (folders are searched recursively), sorted."""
    exts = set(readers.IMAGE_EXTS) | set(readers.WSI_EXTS)
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


def plan_tiles(reader, tile_size: int, stride: int, level: Optional[int],
               mpp: Optional[float], source_mpp: Optional[float],
               min_tissue: float, thumb_px: int = 2048, **mask_kw) -> Dict:
    """Grid, tissue fractions and kept tiles of one image (reads nothing
    but a thumbnail).

    Returns:
        dict: ``scale``, ``level``, ``footprint`` (level-0 px), ``xs``,
        ``ys``, ``fractions`` (np.ndarray[Ny, Nx]) and ``keep`` (bool, same
        shape).
    """
    scale, read_level = scale_for(reader, level, mpp, source_mpp)
    footprint = int(round(tile_size * scale))
    step = int(round(stride * scale))
    w, h = reader.dimensions
    xs, ys = tile_grid(w, h, footprint, step)
    # a thumbnail fine enough for >= 32 mask px per tile, at most thumb_px
    max_side = int(min(thumb_px, max(64, 32 * max(w, h) / max(footprint, 1))))
    thumb, ds = reader.thumbnail(max_side)
    mask = tissue_mask(thumb, **mask_kw)
    fractions = tile_tissue_fractions(mask, ds, xs, ys, footprint)
    return dict(scale=scale, level=read_level, footprint=footprint, xs=xs,
                ys=ys, fractions=fractions, keep=fractions >= min_tissue,
                thumbnail_downsample=ds)


def read_tile(reader, x: int, y: int, plan: Dict, tile_size: int
              ) -> np.ndarray:
    """Read one tile (RGB uint8 [tile_size, tile_size, 3])."""
    lvl = plan['level']
    size = int(round(plan['footprint'] / reader.level_downsamples[lvl]))
    img = reader.read_region(int(x), int(y), size, size, lvl)
    if size != tile_size:
        img = cv2.resize(img, (tile_size, tile_size),
                         interpolation=cv2.INTER_AREA)
    return img


def extract_tiles(inputs: Sequence[str], out_dir: Path, tile_size: int = 256,
                  stride: Optional[int] = None, level: Optional[int] = None,
                  mpp: Optional[float] = None,
                  source_mpp: Optional[float] = None,
                  min_tissue: float = 0.3, max_tiles: Optional[int] = None,
                  fmt: str = 'jpg', seed: int = 0, backend: str = 'auto',
                  resume: bool = False, force_overwrite: bool = False,
                  glass_delta: float = 25., min_chroma: float = 25.,
                  jpeg_quality: int = 95, progress: bool = True) -> Dict:
    """Extract tiles from every input; see the module docstring.

    Returns:
        dict: ``kept``, ``skipped`` (background), ``existing`` (resumed),
        ``per_source`` counts and the manifest paths.
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
    mask_kw = dict(glass_delta=glass_delta, min_chroma=min_chroma)
    # one input at a time (a decoded plain field is freed before the next);
    # the bar total grows as each input is planned
    bar = tqdm(total=0, unit='tile', disable=not progress, desc='tiles')
    rows, per_source = [], {}
    kept = skipped = existing = 0
    params = ([cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
              if fmt == 'jpg' else [])
    for file_idx, f in enumerate(files):
        with readers.open_slide(f, backend=backend, mpp=source_mpp) as reader:
            plan = plan_tiles(reader, tile_size, stride, level, mpp,
                              source_mpp, min_tissue, **mask_kw)
            iy, ix = np.nonzero(plan['keep'])
            if max_tiles is not None and iy.size > max_tiles:
                rng = np.random.default_rng([seed, file_idx])
                sel = np.sort(rng.choice(iy.size, max_tiles, replace=False))
                iy, ix = iy[sel], ix[sel]
            bar.total += int(iy.size)
            bar.refresh()
            n_grid = plan['keep'].size
            n_bg = int((~plan['keep']).sum())
            n_new = n_old = 0
            for y, x, frac in zip(plan['ys'][iy], plan['xs'][ix],
                                  plan['fractions'][iy, ix]):
                name = f'{f.stem}_x{int(x)}_y{int(y)}.{fmt}'
                path = out_dir / name
                if path.exists() and not force_overwrite:
                    if not resume:
                        raise FileExistsError(
                            f'tile {path} exists: pass --resume or '
                            '--force-overwrite')
                    n_old += 1
                else:
                    tile = read_tile(reader, x, y, plan, tile_size)
                    if not cv2.imwrite(str(path), tile[..., ::-1], params):
                        raise OSError(f'cannot write {path}')
                    n_new += 1
                rows.append(dict(file=name, source=str(f), x=int(x), y=int(y),
                                 level=plan['level'],
                                 footprint=plan['footprint'],
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
                  seed=seed, glass_delta=glass_delta, min_chroma=min_chroma),
        kept=kept, skipped_background=skipped, existing=existing,
        per_source=per_source, seconds=round(time.time() - t0, 2))
    manifest_json.write_text(json.dumps(summary, indent=1))
    return dict(summary, manifest_csv=manifest_csv,
                manifest_json=manifest_json, rows=rows)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Regular-grid tiles from large cytology images or '
                    'whole-slide images, skipping blank glass.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+',
                   help='image / slide files or folders of them')
    p.add_argument('--out-dir', type=Path, required=True)
    p.add_argument('--tile-size', type=int, default=256,
                   help='output tile side (px)')
    p.add_argument('--stride', type=int, default=None,
                   help='grid step in output px (default: --tile-size)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--level', type=int, default=None,
                   help='pyramid level to read (default 0)')
    g.add_argument('--mpp', type=float, default=None,
                   help='target microns per pixel of the tiles')
    p.add_argument('--source-mpp', type=float, default=None,
                   help='level-0 microns per pixel of plain images')
    p.add_argument('--min-tissue', type=float, default=0.3,
                   help='smallest tissue fraction of a kept tile')
    p.add_argument('--max-tiles', type=int, default=None,
                   help='at most this many tiles per input (random, --seed)')
    p.add_argument('--format', choices=('jpg', 'png'), default='jpg')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--backend', default='auto',
                   choices=('auto', 'image', 'openslide', 'tiffslide'))
    p.add_argument('--glass-delta', type=float, default=25.,
                   help='grey levels below the glass counted as tissue')
    p.add_argument('--min-chroma', type=float, default=25.,
                   help='RGB max-min above which a pixel is stained tissue')
    p.add_argument('--resume', action='store_true',
                   help='keep existing tiles, write the missing ones')
    p.add_argument('--force-overwrite', action='store_true',
                   help='rewrite existing tiles and manifest')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        res = extract_tiles(
            args.inputs, args.out_dir, tile_size=args.tile_size,
            stride=args.stride, level=args.level, mpp=args.mpp,
            source_mpp=args.source_mpp, min_tissue=args.min_tissue,
            max_tiles=args.max_tiles, fmt=args.format, seed=args.seed,
            backend=args.backend, resume=args.resume,
            force_overwrite=args.force_overwrite,
            glass_delta=args.glass_delta, min_chroma=args.min_chroma,
            progress=not args.no_progress)
    except (FileExistsError, FileNotFoundError, ValueError, ImportError,
            OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f"kept {res['kept']} tiles ({res['existing']} already there), "
          f"skipped {res['skipped_background']} background tiles, "
          f"in {res['seconds']} s -> {args.out_dir}")
    for src, c in res['per_source'].items():
        print(f"  {src}: grid {c['grid']}, background {c['background']}, "
              f"written {c['written']}, existing {c['existing']}, "
              f"not selected {c['not_selected']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
