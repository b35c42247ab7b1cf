"""Report: ``report.json`` of a slide (timing, tiles, counts per class, top
cells, slide scores, the run key, warnings) and ``summary.json`` of a run
(one row per slide, merged across runs).
"""
import json
import os
import os.path as osp
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from cervdet.utils.json_files import atomic_json


def input_warnings(dims, read_ds: float, plan, tile_size: int,
                   use_mask: bool) -> List[str]:
    """Why a slide's scores may not be a screening result: an image too
    small to hold cells, or no tissue found."""
    out = []
    w, h = (int(v) for v in dims)
    small = max(32, tile_size // 4)
    if min(w, h) / float(read_ds) < small:
        out.append(
            f'the image is only {w}x{h} px (level 0), less than {small} '
            'px on a side at the reading resolution: too small to hold '
            'the cells of a slide, so its scores are not a negative '
            'result. Is it the right file (a thumbnail or a cell crop)?')
    elif int(plan.keep.sum()) == 0 and use_mask:
        out.append('no tissue found (every tile is blank glass): the '
                   'slide scores 0 without having been screened; check '
                   'the scan, or run with --no-mask to read every tile')
    return out


def failed_report(slide: Path, err: str, rank: int) -> dict:
    """The report of a slide that could not be screened (warns on rank
    0)."""
    if str(slide) not in err:
        err = f'{slide}: {err}'
    report = dict(slide=slide.stem, path=str(slide), status='failed',
                  error=err)
    if rank == 0:
        warnings.warn(f'slide {slide} failed: {err}', stacklevel=3)
    return report


def timing_report(times: List[dict], t_total: float, t_plan: float,
                  t_merge: float, t_outputs: float) -> dict:
    """The report's ``timing``: ``times`` holds one ``dict(model, loop,
    tiles)`` per rank."""
    t_model = float(sum(t['model'] for t in times))
    t_loop = float(max([t['loop'] for t in times] + [0.]))
    n_read = int(sum(t['tiles'] for t in times))
    return dict(total_s=t_total, plan_and_mask_s=t_plan,
                detect_loop_s=t_loop, model_s=t_model, merge_s=t_merge,
                outputs_s=t_outputs,
                detector_busy=t_model / t_loop if t_loop > 0 and
                len(times) == 1 else None,
                tiles_per_s=n_read / t_loop if t_loop > 0 else None)


def slide_report(slide: Path, reader, slide_mpp: Optional[float],
                 read_ds: float, plan, raw: Dict[str, np.ndarray],
                 dets: Dict[str, np.ndarray], scored: dict,
                 classes: Sequence[str], abnormal_classes: Sequence[str],
                 detector: dict, settings: dict, merge_cfg: dict,
                 run_key: dict, times: List[dict], resumed: int,
                 timing: dict, outputs: Dict[str, str], top_n: int,
                 warn: List[str]) -> dict:
    """``report.json`` of a screened slide.

    Args:
        slide (Path): The slide file.
        reader (SlideReader): The open slide.
        slide_mpp (float, optional): Level-0 microns per pixel.
        read_ds (float): Level-0 px per px of the reading resolution.
        plan (TilePlan): The tile plan.
        raw (dict): Detections before merging.
        dets (dict): Merged detections.
        scored (dict): :meth:`~.scoring.SlideScorer.score` of ``dets``.
        classes (Sequence[str]): Class names.
        abnormal_classes (Sequence[str]): The abnormal ones.
        detector (dict): ``config`` and ``checkpoint`` paths.
        settings (dict): Settings that change the detections.
        merge_cfg (dict): Merge settings.
        run_key (dict): :func:`~.resume.run_key`.
        times (list[dict]): ``dict(model, loop, tiles)`` per rank.
        resumed (int): Tiles finished by an earlier run.
        timing (dict): :func:`timing_report`.
        outputs (dict): Files written per slide.
        top_n (int): Cells listed in ``top_cells``.
        warn (list[str]): :func:`input_warnings`.

    Returns:
        dict: The report (``status='done'``).
    """
    n_read = int(sum(t['tiles'] for t in times))
    counts = np.bincount(dets['labels'], minlength=len(classes))
    top, top_scores = scored['top'], scored['top_scores']
    return dict(
        slide=slide.stem, path=str(slide), status='done',
        reader=type(reader).__name__,
        dimensions=list(reader.dimensions), mpp=slide_mpp,
        read_downsample=read_ds,
        read_mpp=None if slide_mpp is None else slide_mpp * read_ds,
        settings=settings, merge=merge_cfg,
        detector=dict(detector, classes=list(classes),
                      abnormal_classes=list(abnormal_classes)),
        tiles=dict(total=int(len(plan.keep)), read=n_read,
                   resumed=int(resumed),
                   skipped_blank=int((~plan.keep).sum()),
                   grid=list(plan.grid_shape), size=plan.tile_size,
                   overlap=plan.overlap),
        detections=dict(raw=int(len(raw['scores'])),
                        merged=int(len(dets['scores'])),
                        per_class={c: int(n) for c, n in
                                   zip(classes, counts)}),
        top_cells=[dict(rank=i + 1, bbox=[float(v) for v in b],
                        cls=classes[int(lb)], score=float(s))
                   for i, (b, lb, s) in enumerate(zip(
                       top['bboxes'][:top_n], top['labels'][:top_n],
                       top_scores[:top_n]))],
        slide_scores=scored['slide_scores'],
        timing=timing,
        outputs=outputs,
        run_key=json.loads(json.dumps(run_key, default=str)),
        warnings=warn)


# ---------------------------------------------------------------- summary
def summary_row(slide: Path, report: dict) -> dict:
    """One slide's row of ``summary.json``."""
    row = dict(slide=report.get('slide', slide.stem), path=str(slide),
               status=report['status'])
    if report['status'] == 'failed':
        row['error'] = report['error']
        return row
    row.update(cells=report['detections']['merged'],
               slide_scores=report['slide_scores'],
               seconds=report['timing']['total_s'])
    if 'slide_call' in report:
        row['slide_call'] = report['slide_call']['grade']
    if report.get('warnings'):
        row['warnings'] = report['warnings']
    if report.get('note'):
        row['note'] = report['note']
    return row


def describe(report: dict) -> str:
    """The console line of a slide."""
    status = report['status']
    if status == 'failed':
        return f'FAILED: {report["error"]}'
    if status == 'skipped':
        return ('skipped (finished in an earlier run' +
                (f'; {report["note"]}' if report.get('note') else '') + ')')
    return (f"done: {report['detections']['merged']} cells, max score "
            f"{report['slide_scores']['max']:.3f}, "
            f"{report['tiles']['read']} tiles read, "
            f"{report['tiles']['skipped_blank']} blank skipped, "
            f"{report['timing']['total_s']:.1f} s")


def write_summary(out_dir: str, rows: list, world: int,
                  seconds: float) -> str:
    """Merge ``rows`` into ``out_dir/summary.json`` (atomically).

    Slides of earlier runs that this run did not process keep their rows;
    this run's rows replace the rows of the same slide paths.
    """
    path = osp.join(out_dir, 'summary.json')
    old = []
    if osp.isfile(path):
        try:
            with open(path) as f:
                old = json.load(f).get('slides', [])
        except (OSError, ValueError, AttributeError):
            # a damaged summary is kept aside, not lost
            os.replace(path, path + f'.damaged{int(time.time())}')
    mine = {r['path'] for r in rows}
    merged = [r for r in old if r.get('path') not in mine] + list(rows)
    out = dict(slides=merged, world_size=world, seconds=seconds,
               last_run=dict(slides=[r['path'] for r in rows],
                             failed=sum(r['status'] == 'failed'
                                        for r in rows)))
    atomic_json(path, out)
    return path


__all__ = ['input_warnings', 'failed_report', 'timing_report',
           'slide_report', 'summary_row', 'describe', 'write_summary']
