"""Whole-slide and large-field screening with any cervdet / mmdet detector.

:class:`SlideInferencer` streams a slide (or a large plain field) through a
detector tile by tile and writes, per slide, the merged cells, a QuPath
GeoJSON, a gallery of the most suspicious cells, an overview picture, the top-k
cells with features (the input of slide-level MIL models) and a JSON report
with timing, tile counts, counts per class and slide scores.

Stages (one slide), each in its own module of :mod:`cervdet.apis.slide`::

    reader (open_slide)  ->  tissue_mask (thumbnail)  ->  plan_tiles
      -> detect: DataLoader(SlideTileDataset + the detector's test pipeline,
                 num_workers reader processes, batches) -> model.test_step
                 -> per tile: score threshold, boxes on interior tile edges
                 dropped, tile -> level-0 coordinates
      -> resume: chunks (partial/*.npz, every ``chunk_tiles`` tiles), the
                 settings check, the tiles left
      -> merge_detections (NMS / IOS / centre distance)
      -> scoring: cell scores, top-k cells + features, slide scores
      -> outputs (tables, GeoJSON, pictures) -> report (report.json)

Memory stays bounded: no slide is decoded whole (tiles are read region by
region, the mask from a thumbnail), the DataLoader holds at most
``num_workers * prefetch_factor`` batches, and only detections (not pixels)
are kept.

Distributed (``tools/dist_slide_infer.sh``): every process runs the same code;
the tiles still to do of each slide are split round-robin over the ranks, each
rank writes its own resume chunks, and rank 0 merges all chunks and writes
the outputs. Results do not depend on the number of processes.
"""
import copy
import json
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dist import (
    all_gather_object,
    barrier,
    broadcast_object_list,
    get_dist_info,
)
from mmengine.registry import DefaultScope

from cervdet.apis.det_init import init_detector_strict
from cervdet.apis.inference_speed import optimize_for_inference
from cervdet.datasets.slide_tiles import (
    open_shared,
    plan_tiles,
    resolve_read_scale,
    tissue_mask,
)
from cervdet.utils.slide_merge import index_dets, merge_detections

from .detect import detect_tiles, test_pipeline_for_arrays
from .outputs import OUTPUT_FILES, write_slide_outputs, written_outputs
from .report import failed_report, input_warnings, slide_report, timing_report
from .resume import (
    atomic_json,
    changed_since,
    load_chunks,
    prepare_slide_dir,
    resume_key,
    run_key,
)
from .scoring import SlideScorer
from .settings import SlideSettings


def sort_dets(dets: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Detections in a canonical order (score descending, then position),
    so that the outputs do not depend on the order tiles were processed."""
    b = dets['bboxes']
    order = np.lexsort((b[:, 1], b[:, 0], dets['labels'], -dets['scores']))
    return index_dets(dets, order)


def resolve_classes(model: torch.nn.Module, cfg: Config,
                    config_path: Optional[str]) -> List[str]:
    """Class names of a detector, set as its ``dataset_meta['classes']``.

    The checkpoint's, else the config's test dataset ``metainfo``, else the
    dataset class's ``METAINFO``; checked against the detector's number of
    classes (mmdet falls back to COCO names when a checkpoint has none).

    Raises:
        ValueError: When no candidate has the detector's number of classes.
    """
    num = None
    for head in (getattr(model, 'bbox_head', None),
                 getattr(getattr(model, 'roi_head', None), 'bbox_head',
                         None)):
        if head is not None and hasattr(head, 'num_classes'):
            num = int(head.num_classes)
            break
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while 'dataset' in ds and 'metainfo' not in ds:
        ds = ds['dataset']
    candidates = [(getattr(model, 'dataset_meta', None) or {}).get(
        'classes'), (ds.get('metainfo') or {}).get('classes')]
    if ds.get('type'):
        from mmdet.registry import DATASETS
        with DefaultScope.overwrite_default_scope('mmdet'):
            cls = DATASETS.get(ds['type'])
        candidates.append(getattr(cls, 'METAINFO', {}).get('classes')
                          if cls is not None else None)
    for classes in candidates:
        if classes and (num is None or len(classes) == num):
            model.dataset_meta = dict(
                getattr(model, 'dataset_meta', None) or {},
                classes=tuple(classes))
            return list(classes)
    raise ValueError(
        f'{config_path}: no class names for the detector\'s {num} '
        'classes (none in the checkpoint meta, '
        'test_dataloader.dataset.metainfo.classes or the dataset type); '
        'add metainfo=dict(classes=(...)) to the test dataset')


def _any_error(err: Optional[str]) -> Optional[str]:
    """First error of any rank (None when all ranks are fine)."""
    _, world = get_dist_info()
    if world == 1:
        return err
    errs = all_gather_object(err)
    return next((e for e in errs if e is not None), None)


class SlideInferencer:
    """Detect cells over whole slides or large fields, tile by tile.

    Args:
        config (str | Config): Detector config (any mmdet / cervdet
            detector with a test pipeline).
        checkpoint (str, optional): Detector checkpoint (None: untrained,
            for pipeline checks only).
        device (str, optional): ``'cpu'``, ``'cuda:0'``...; default: the
            process's GPU when CUDA is available, else CPU.
        model (nn.Module, optional): An already built detector used instead
            of building one from ``config`` (its ``dataset_meta['classes']``
            names the classes).
        settings (SlideSettings, optional): The settings of every stage.
        **kwargs: Or the settings as flat keywords (``tile_size=512,
            overlap=128, merge='nms', top_k=32, ...``; every name, its
            default and meaning: :mod:`cervdet.apis.slide.settings`).

    Attributes:
        settings (SlideSettings): The settings of every stage.
        classes (list[str]): The detector's class names.
        scorer (SlideScorer): Cell and slide scoring.
        pipeline (list[dict]): The test pipeline the tiles go through.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 model: Optional[torch.nn.Module] = None,
                 settings: Optional[SlideSettings] = None,
                 **kwargs) -> None:
        import cervdet  # noqa: F401  (registers every cervdet module)
        if settings is None:
            settings = SlideSettings.from_kwargs(**kwargs)
        elif kwargs:
            raise TypeError('pass the settings either as settings= or as '
                            f'keywords, not both (got {sorted(kwargs)})')
        self.settings = settings
        self.cfg = config if isinstance(config, Config) else \
            Config.fromfile(str(config))
        self.config_path = None if isinstance(config, Config) else str(config)
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        if device is None:
            if torch.cuda.is_available():
                device = f'cuda:{torch.cuda.current_device()}'
            else:
                device = 'cpu'
        self.device = torch.device(device)
        self.model = self._build_model(model)
        self.classes: List[str] = resolve_classes(self.model, self.cfg,
                                                  self.config_path)
        self.scorer = SlideScorer(settings.score, self.classes, self.device)
        self.abnormal_classes = self.scorer.abnormal_classes
        self.pipeline = test_pipeline_for_arrays(self.cfg)

    def _build_model(self, model: Optional[torch.nn.Module]
                     ) -> torch.nn.Module:
        """The detector on the device, in eval mode, optimised for
        inference (a given model is copied first, never modified)."""
        det = self.settings.detect
        given = model is not None
        if model is None:
            if self.checkpoint is None:
                warnings.warn('SlideInferencer: no checkpoint: the detector '
                              'is untrained', stacklevel=3)
            model = init_detector_strict(self.cfg, self.checkpoint)
        if det.optimize or det.precision != 'fp32':
            model = copy.deepcopy(model) if given else model
            model = optimize_for_inference(
                model.to(self.device).eval(), score_thr=det.score_thr,
                fuse_bn=det.optimize, channels_last=det.optimize,
                precision=det.precision)
        return model.to(self.device).eval()

    def run_key(self) -> dict:
        """What makes a slide's outputs: settings, merge, detector files."""
        return run_key(self.settings.result_settings(),
                       self.settings.merge_cfg(), self.config_path,
                       self.checkpoint, self.classes)

    def changed_since(self, report: dict) -> List[str]:
        """What differs between this inferencer and the run that wrote
        ``report`` (see :func:`cervdet.apis.slide.resume.changed_since`)."""
        return changed_since(report, self.run_key(), self.checkpoint)

    # ------------------------------------------------------------------
    def run(self, slide: Union[str, Path], out_dir: Union[str, Path],
            overwrite: bool = False) -> dict:
        """Screen one slide; every process of a distributed run calls it.

        Args:
            slide (str | Path): A WSI or a large plain image.
            out_dir (str | Path): Outputs go to ``out_dir/<slide stem>/``.
            overwrite (bool): Redo a finished slide (its old outputs are
                deleted). Without it a finished slide is skipped and an
                interrupted one resumes.

        Returns:
            dict: The report (``status`` ``'done'``, ``'skipped'`` or
            ``'failed'`` with ``error``).
        """
        slide = Path(slide)
        sdir = Path(out_dir) / slide.stem
        report_path = sdir / OUTPUT_FILES['report']
        rank, _ = get_dist_info()
        if report_path.is_file() and not overwrite:
            with open(report_path) as f:
                old = json.load(f)
            if old.get('status') == 'done':
                out = dict(old, status='skipped')
                changed = self.changed_since(old)
                if changed:
                    out['note'] = (
                        'finished before with other ' + ', '.join(changed) +
                        ': its outputs are of that run; --overwrite redoes '
                        'the slide with the current ones')
                return out
        t_start = time.perf_counter()
        err = None
        read = self.settings.read
        try:
            reader = open_shared(slide, read.backend, read.mpp)
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'cannot open {slide}: {type(e).__name__}: {e}'
            reader = None
        # the same decision on every rank (a file may be half-visible)
        err = _any_error(err)
        if err is not None:
            return failed_report(slide, err, rank)
        try:
            return self._run_open(slide, sdir, reader, overwrite, t_start)
        finally:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing a broken file
                pass

    def _plan(self, reader):
        """Reading scale, tissue mask and tile plan of an open slide."""
        read = self.settings.read
        slide_mpp = read.mpp if read.mpp is not None else reader.mpp
        read_ds = resolve_read_scale(reader.mpp, read.target_mpp, read.mpp)
        if read.use_mask:
            mask, mask_ds = tissue_mask(reader, max_side=read.mask_max_side)
        else:
            mask, mask_ds = None, None
        plan = plan_tiles(reader.dimensions, read.tile_size, read.overlap,
                          read_ds, mask=mask, mask_downsample=mask_ds,
                          min_tissue=read.min_tissue if mask is not None
                          else 0.)
        return slide_mpp, read_ds, mask, mask_ds, plan

    def _run_open(self, slide: Path, sdir: Path, reader, overwrite: bool,
                  t_start: float) -> dict:
        rank, world = get_dist_info()
        err = None
        try:  # a truncated or unsupported file often fails only here
            slide_mpp, read_ds, mask, mask_ds, plan = self._plan(reader)
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'tissue mask / tile plan: {type(e).__name__}: {e}'
        err = _any_error(err)
        if err is not None:
            return failed_report(slide, err, rank)
        t_plan = time.perf_counter() - t_start
        partial = sdir / 'partial'
        settings = self.settings.result_settings()
        key = resume_key(settings, slide, reader.dimensions, read_ds,
                         self.config_path, self.checkpoint, self.classes)

        # rank 0 prepares the folder and decides which tiles are left
        todo_obj = [None, None]
        if rank == 0:
            try:
                todo_obj = [prepare_slide_dir(sdir, partial, key, settings,
                                              plan, overwrite),
                            uuid.uuid4().hex[:8]]
            except Exception as e:  # noqa: BLE001
                todo_obj = [f'{type(e).__name__}: {e}', None]
        if world > 1:
            broadcast_object_list(todo_obj, src=0)
        todo, run_id = todo_obj
        if isinstance(todo, str):  # reported, the other slides go on
            return failed_report(slide, todo, rank)
        resumed = int(plan.keep.sum()) - len(todo)
        mine = todo[rank::world]

        err, t_model, t_loop, n_read = None, 0., 0., 0
        try:
            t_model, t_loop, n_read = detect_tiles(
                self.model, slide, plan, read_ds, mine, self.pipeline,
                self.settings.read, self.settings.detect, partial,
                f'{run_id}_r{rank}')
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'{type(e).__name__}: {e}'
        err = _any_error(err)
        times = [dict(model=t_model, loop=t_loop, tiles=n_read)]
        if world > 1:
            times = all_gather_object(times[0])
        if err is not None:
            barrier()
            return failed_report(slide, err, rank)
        report = None
        if rank == 0:
            try:
                report = self._finish(slide, sdir, partial, reader, plan,
                                      read_ds, slide_mpp, mask, mask_ds,
                                      times, resumed, t_start, t_plan)
            except Exception as e:  # noqa: BLE001 - reported, the rest goes on
                report = failed_report(
                    slide, f'writing the outputs: {type(e).__name__}: {e} '
                    f'(finished tiles are kept in {partial})', rank)
        barrier()
        if world > 1:
            obj = [report]
            broadcast_object_list(obj, src=0)
            report = obj[0]
        return report

    def _finish(self, slide, sdir, partial, reader, plan, read_ds, slide_mpp,
                mask, mask_ds, times, resumed, t_start, t_plan) -> dict:
        """Merge every chunk of the slide, score it and write the outputs
        and the report (rank 0)."""
        t0 = time.perf_counter()
        raw = load_chunks(partial)['dets']
        keep = merge_detections(raw, mpp=slide_mpp,
                                **self.settings.merge_cfg())
        dets = sort_dets(index_dets(raw, keep))
        t_merge = time.perf_counter() - t0

        scored = self.scorer.score(dets, reader, self.model)
        out = self.settings.output
        write_slide_outputs(sdir, slide.name, dets, scored, self.classes,
                            slide_mpp, reader, mask, mask_ds, out)

        t_total = time.perf_counter() - t_start
        timing = timing_report(times, t_total, t_plan, t_merge,
                               time.perf_counter() - t0 - t_merge)
        read = self.settings.read
        report = slide_report(
            slide, reader, slide_mpp, read_ds, plan, raw, dets, scored,
            self.classes, self.abnormal_classes,
            dict(config=self.config_path, checkpoint=self.checkpoint),
            self.settings.result_settings(), self.settings.merge_cfg(),
            self.run_key(), times, resumed, timing, written_outputs(out),
            out.gallery_top_n,
            input_warnings(reader.dimensions, read_ds, plan, read.tile_size,
                           read.use_mask))
        for w in report['warnings']:
            warnings.warn(f'{slide}: {w}', stacklevel=2)
        call = self.scorer.slide_call(scored['slide_scores'])
        if call is not None:
            report['slide_call'] = call
        atomic_json(sdir / OUTPUT_FILES['report'], report)
        shutil.rmtree(partial, ignore_errors=True)
        return report


def list_slides(path: Union[str, Path]) -> List[Path]:
    """A slide file, or the slides and large images of a folder (sorted)."""
    from cervdet.datasets.slide_readers import IMAGE_EXTS, WSI_EXTS
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f'{path} is neither a slide nor a folder')
    exts = set(WSI_EXTS) | set(IMAGE_EXTS)
    slides = sorted(p for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in exts)
    if not slides:
        raise FileNotFoundError(f'{path} holds no slide or image '
                                f'({", ".join(sorted(exts))})')
    stems = [p.stem for p in slides]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ValueError(f'{path}: slides {dup} share a name stem, so their '
                         'outputs would collide; rename or split the folder')
    return slides


__all__ = ['SlideInferencer', 'list_slides', 'sort_dets', 'resolve_classes']
