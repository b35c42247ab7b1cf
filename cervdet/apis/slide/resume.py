"""Resume: a slide's finished tiles survive an interruption.

``OUT/<slide>/partial/`` holds ``settings.json`` (the resume key: the
settings, the slide file, the detector files and classes) and atomic
per-rank chunks ``chunk_<run>_r<rank>_<seq>.npz`` (the detections of
finished tiles and their indices ``done``). A later run with the same key
reads only the tiles not yet done; another key is refused (``--overwrite``
starts the slide again). A finished slide's ``report.json`` holds the run
key, so a later run can say what changed since (:func:`changed_since`).
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from cervdet.utils.json_files import atomic_json
from cervdet.utils.slide_merge import concat_dets

from .outputs import OUTPUT_FILES


def file_key(path: Optional[str]) -> Optional[str]:
    """Path, size and modification time of a file (resume key); the path
    itself when it is not a file."""
    if not path or not osp.isfile(path):
        return path
    st = os.stat(path)
    return f'{osp.abspath(path)}:{st.st_size}:{int(st.st_mtime)}'


def run_key(settings: dict, merge_cfg: dict, config_path: Optional[str],
            checkpoint: Optional[str], classes: Sequence[str]) -> dict:
    """What makes a slide's outputs: settings, merge, detector files."""
    return dict(settings=settings, merge=merge_cfg, config=config_path,
                checkpoint=file_key(checkpoint), classes=list(classes))


def resume_key(settings: dict, slide: Path, dims, read_downsample: float,
               config_path: Optional[str], checkpoint: Optional[str],
               classes: Sequence[str]) -> str:
    """sha256 of what the finished tiles of ``slide`` depend on."""
    key = dict(settings, slide=file_key(str(slide)), dims=list(dims),
               read_downsample=read_downsample,
               checkpoint=file_key(checkpoint), config=config_path,
               classes=list(classes))
    return hashlib.sha256(json.dumps(key, sort_keys=True,
                                     default=str).encode()).hexdigest()


def changed_since(report: dict, new_key: dict,
                  checkpoint: Optional[str]) -> List[str]:
    """What differs between the run of ``new_key`` and the run that wrote
    ``report`` (``'checkpoint'``, ``'config'``, ``'settings (tile_size:
    512 -> 384)'``...); empty when it is the same.

    Args:
        report (dict): A finished slide's ``report.json``.
        new_key (dict): :func:`run_key` of the current run.
        checkpoint (str, optional): The current checkpoint path (compared
            by path with reports written before reports had a run key).
    """
    old = report.get('run_key')
    if old is None:  # report of an older version: compare what it has
        det = report.get('detector') or {}
        old = dict(settings=report.get('settings'),
                   merge=report.get('merge'),
                   config=det.get('config'),
                   checkpoint=det.get('checkpoint'),
                   classes=det.get('classes'))
        new = dict(new_key, checkpoint=checkpoint)
    else:
        new = new_key
    new = json.loads(json.dumps(new, default=str))
    changed = []
    for key in ('checkpoint', 'config', 'classes'):
        if old.get(key) != new.get(key):
            changed.append(f'{key} ({old.get(key)} -> {new.get(key)})')
    for key in ('settings', 'merge'):
        a, b = old.get(key) or {}, new.get(key) or {}
        diff = [f'{k}: {a.get(k)} -> {b.get(k)}'
                for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if diff:
            changed.append(f'{key} ({", ".join(diff)})')
    return changed


def save_chunk(partial: Path, name: str, parts: list, done: list) -> None:
    """Write the detections ``parts`` of the finished tiles ``done``
    atomically to ``partial/chunk_<name>.npz``."""
    dets = concat_dets(parts)
    tmp = partial / f'.{name}.tmp.npz'
    np.savez(tmp, done=np.asarray(done, np.int64), **dets)
    os.replace(tmp, partial / f'chunk_{name}.npz')


def load_chunks(partial: Path) -> dict:
    """Every chunk of ``partial``: ``dets`` (``bboxes, scores, labels,
    tiles``) and ``done`` int64[T] (the finished tiles)."""
    parts, done = [], []
    for f in sorted(partial.glob('chunk_*.npz')):
        with np.load(f) as z:
            done.append(z['done'])
            parts.append({k: z[k] for k in ('bboxes', 'scores', 'labels',
                                            'tiles')})
    return dict(dets=concat_dets(parts),
                done=np.concatenate(done) if done else np.zeros(0, np.int64))


def prepare_slide_dir(sdir: Path, partial: Path, key: str, settings: dict,
                      plan, overwrite: bool) -> np.ndarray:
    """Create the slide folder; return the tile indices still to do.

    With ``overwrite`` the old outputs and chunks are deleted first.

    Raises:
        ValueError: When ``partial`` holds the chunks of another key.
    """
    if overwrite and sdir.exists():
        for name in OUTPUT_FILES.values():
            if (sdir / name).exists():
                (sdir / name).unlink()
        if partial.exists():
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    key_file = partial / 'settings.json'
    if key_file.is_file():
        with open(key_file) as f:
            old = json.load(f).get('key')
        if old != key:
            raise ValueError(
                f'{partial} holds finished tiles of a run with other '
                'settings, checkpoint or slide; run with the same '
                'settings to resume, or with --overwrite to start the '
                'slide again (deletes them)')
    else:
        atomic_json(key_file, dict(key=key, settings=settings))
    done = load_chunks(partial)['done']
    keep = np.flatnonzero(plan.keep)
    return np.setdiff1d(keep, done).astype(np.int64)


__all__ = ['file_key', 'atomic_json', 'run_key', 'resume_key',
           'changed_since', 'save_chunk', 'load_chunks', 'prepare_slide_dir']
