"""Whole-slide and large-field screening with any cervdet / mmdet detector.

:class:`SlideInferencer` streams a slide (or a large plain field) through a
detector tile by tile and writes, per slide, the merged cells, a QuPath
GeoJSON, a gallery of the most suspicious cells, an overview picture, the top-k
cells with features (the input of slide-level MIL models) and a JSON report
with timing, tile counts, counts per class and slide scores.

Pipeline (one slide)::

    reader (open_slide)  ->  tissue_mask (thumbnail)  ->  plan_tiles
      -> DataLoader(SlideTileDataset + the detector's test pipeline,
                    num_workers reader processes, batches)
      -> model.test_step (batched)  -> per tile: score threshold, boxes on
         interior tile edges dropped, tile -> level-0 coordinates
      -> resume chunks (partial/*.npz, every ``chunk_tiles`` tiles)
      -> merge_detections (NMS / IOS / centre distance)  -> outputs

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
import hashlib
import json
import os
import os.path as osp
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

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
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cervdet.apis.det_init import init_detector_strict
from cervdet.apis.inference_speed import optimize_for_inference
from cervdet.datasets.slide_tiles import (
    SlideTileDataset,
    is_decoded,
    open_shared,
    plan_tiles,
    resolve_read_scale,
    tissue_mask,
)
from cervdet.utils.slide_merge import (
    concat_dets,
    drop_edge_boxes,
    index_dets,
    merge_detections,
)
from cervdet.visualization.slide_outputs import (
    draw_gallery,
    draw_overview,
    write_detections_table,
    write_geojson,
    write_png,
)

#: Names of the files written per slide (in ``OUT/<slide stem>/``).
OUTPUT_FILES = dict(
    csv='detections.csv',
    parquet='detections.parquet',
    geojson='detections.geojson',
    gallery='gallery.png',
    overview='overview.png',
    cells='cells_topk.npz',
    report='report.json')
#: Class names read as negative (not abnormal) by default.
NEGATIVE_CLASS_NAMES = ('nilm', 'normal', 'negative', 'background')


def sort_dets(dets: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Detections in a canonical order (score descending, then position),
    so that the outputs do not depend on the order tiles were processed."""
    b = dets['bboxes']
    order = np.lexsort((b[:, 1], b[:, 0], dets['labels'], -dets['scores']))
    return index_dets(dets, order)


class _TilePipelineDataset(Dataset):
    """Tiles of a slide passed through the detector's test pipeline.

    Runs in the DataLoader workers: reading, resizing and packing happen in
    parallel with the detector. The pipeline is built lazily in each worker.

    Args:
        tiles (SlideTileDataset): The tile reader (a subset of the plan).
        pipeline (list[dict]): Test pipeline, first step
            ``LoadImageFromNDArray``.
        plan_index (np.ndarray): int64[len(tiles)], the plan index of each
            tile (reported as ``tile_index``).
    """

    def __init__(self, tiles: SlideTileDataset, pipeline: List[dict],
                 plan_index: np.ndarray) -> None:
        self.tiles = tiles
        self.pipeline_cfg = pipeline
        self.plan_index = np.asarray(plan_index, np.int64)
        self._pipeline = None

    def __len__(self) -> int:
        return len(self.tiles)

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_pipeline'] = None
        return state

    def __getitem__(self, i: int) -> dict:
        if self._pipeline is None:
            from mmcv.transforms import Compose

            import cervdet  # noqa: F401  (registers cervdet transforms)
            with DefaultScope.overwrite_default_scope('mmdet'):
                self._pipeline = Compose(copy.deepcopy(self.pipeline_cfg))
        data = self._pipeline(dict(img=self.tiles[i]['img'], img_id=int(i)))
        data['tile_index'] = int(self.plan_index[i])
        return data


def _collate(batch: List[dict]) -> dict:
    return dict(inputs=[b['inputs'] for b in batch],
                data_samples=[b['data_samples'] for b in batch],
                tile_index=np.asarray([b['tile_index'] for b in batch],
                                      np.int64))


def test_pipeline_for_arrays(cfg: Config) -> List[dict]:
    """The detector's test pipeline, reading from arrays.

    ``LoadImageFromFile`` becomes ``LoadImageFromNDArray`` and annotation
    loading is dropped (as in ``mmdet.apis.inference_detector``).

    Raises:
        ValueError: When the config has no test (or val) pipeline.
    """
    for split in ('test', 'val'):
        ds = (cfg.get(f'{split}_dataloader') or {}).get('dataset') or {}
        while 'pipeline' not in ds and 'dataset' in ds:
            ds = ds['dataset']
        if ds.get('pipeline'):
            pipeline = copy.deepcopy(list(ds['pipeline']))
            break
    else:
        raise ValueError('the detector config has no test_dataloader.dataset'
                         '.pipeline: add the test pipeline of the model')
    out = []
    for step in pipeline:
        name = str(step.get('type', '')).split('.')[-1]
        if name == 'LoadImageFromFile':
            step = dict(type='mmdet.LoadImageFromNDArray')
        elif name in ('LoadAnnotations', 'LoadProposals', 'LoadPanopticAnnotations'):
            continue
        out.append(step)
    if str(out[0].get('type', '')).split('.')[-1] != 'LoadImageFromNDArray':
        out.insert(0, dict(type='mmdet.LoadImageFromNDArray'))
    return out


def _file_key(path: Optional[str]) -> Optional[str]:
    """Path, size and modification time of a file (resume key)."""
    if not path or not osp.isfile(path):
        return path
    st = os.stat(path)
    return f'{osp.abspath(path)}:{st.st_size}:{int(st.st_mtime)}'


def _atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


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
        tile_size (int): Tile side at the reading resolution (px); the test
            pipeline then resizes it like any image of the detector.
        overlap (int): Overlap of neighbouring tiles (px at the reading
            resolution). Keep it >= the largest cell: a cell on a tile border
            is then whole in a neighbour (boxes touching interior tile edges
            are dropped, the rest merged).
        target_mpp (float, optional): Microns per pixel to read at (the
            detector's training resolution); None reads level 0.
        mpp (float, optional): Level-0 microns per pixel of inputs without
            metadata (plain images), or to override the slide's.
        batch_size (int): Tiles per ``test_step``.
        num_workers (int): Reader processes of the DataLoader (0: read in
            the main process).
        backend (str): Slide reader (see
            :func:`cervdet.datasets.slide_readers.open_slide`).
        score_thr (float): Lowest kept detection score.
        merge (str): ``'nms'``, ``'ios'`` or ``'centre'`` (see
            :func:`cervdet.utils.slide_merge.merge_detections`).
        class_aware (bool): Merge only boxes of the same class.
        iou_thr (float): IoU of ``'nms'``.
        ios_thr (float): Intersection over the smaller box of ``'ios'``.
        centre_dist_um (float): Centre distance of ``'centre'`` (um).
        edge_margin (float): Boxes closer than this (px of the tile) to an
            interior tile edge are dropped (0: keep all, merge only).
        use_mask (bool): Skip blank glass with a low-resolution tissue mask.
        min_tissue (float): Smallest tissue fraction of a read tile.
        mask_max_side (int): Longest side of the mask thumbnail (px).
        top_k (int): Cells kept per slide for the slide score and MIL bag.
        topk_mean_k (int): ``k`` of the top-k mean aggregator.
        abnormal_classes (list[str], optional): Classes whose scores make a
            cell suspicious; default: every class not named like
            NILM/normal/negative.
        cell_feature_size (int): Side of the cell crops embedded by the
            detector's backbone for the MIL bag (0: no features).
        mil_config (str, optional): Slide MIL classifier config (see
            ``configs/slide_screening``); with ``mil_checkpoint``.
        mil_checkpoint (str, optional): Its checkpoint.
        thresholds (str | dict, optional): Per-grade thresholds from
            ``tools/slide/calibrate_thresholds.py``: the report then holds a
            slide call.
        gallery_top_n (int): Cells in the gallery.
        overview_max_side (int): Longest side of the overview picture.
        chunk_tiles (int): Tiles per resume chunk (finished tiles are saved
            every ``chunk_tiles`` tiles).
        write_parquet (bool): Also write ``detections.parquet``.
        progress (bool): Show a progress bar over the tiles (rank 0; with N
            ranks it counts rank 0's tiles times N).
        optimize (bool): Fold BatchNorms into convs, run channels-last and
            push ``score_thr`` into the dense head (same detections, see
            :mod:`cervdet.apis.inference_speed`); a given ``model`` is
            copied first.
        precision (str): ``'fp32'`` or ``'bf16'`` (bfloat16 autocast of the
            network on CPUs with AMX / AVX512-BF16 or Ampere+ GPUs: faster,
            scores move by ~1e-3).
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 model: Optional[torch.nn.Module] = None,
                 tile_size: int = 512,
                 overlap: int = 128,
                 target_mpp: Optional[float] = None,
                 mpp: Optional[float] = None,
                 batch_size: int = 4,
                 num_workers: int = 2,
                 backend: str = 'auto',
                 score_thr: float = 0.05,
                 merge: str = 'nms',
                 class_aware: bool = True,
                 iou_thr: float = 0.5,
                 ios_thr: float = 0.6,
                 centre_dist_um: float = 6.0,
                 edge_margin: float = 2.0,
                 use_mask: bool = True,
                 min_tissue: float = 0.02,
                 mask_max_side: int = 1024,
                 top_k: int = 32,
                 topk_mean_k: int = 10,
                 abnormal_classes: Optional[Sequence[str]] = None,
                 cell_feature_size: int = 64,
                 mil_config: Optional[str] = None,
                 mil_checkpoint: Optional[str] = None,
                 thresholds: Union[str, dict, None] = None,
                 gallery_top_n: int = 10,
                 overview_max_side: int = 2048,
                 chunk_tiles: int = 64,
                 write_parquet: bool = True,
                 progress: bool = False,
                 optimize: bool = True,
                 precision: str = 'fp32') -> None:
        import cervdet  # noqa: F401  (registers every cervdet module)
        if merge not in ('nms', 'ios', 'centre'):
            raise ValueError(f'merge={merge!r}: choose nms, ios or centre')
        if tile_size <= 0 or not 0 <= overlap < tile_size:
            raise ValueError(f'tile_size={tile_size}, overlap={overlap}: '
                             'need tile_size > 0 and 0 <= overlap < '
                             'tile_size')
        if top_k < 1:
            raise ValueError(f'top_k={top_k} must be >= 1')
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
        given = model is not None  # the caller's model is not modified
        if model is None:
            if self.checkpoint is None:
                warnings.warn('SlideInferencer: no checkpoint: the detector '
                              'is untrained', stacklevel=2)
            model = init_detector_strict(self.cfg, self.checkpoint)
        if optimize or precision != 'fp32':
            model = copy.deepcopy(model) if given else model
            model = optimize_for_inference(
                model.to(self.device).eval(), score_thr=score_thr,
                fuse_bn=optimize, channels_last=optimize,
                precision=precision)
        self.model = model.to(self.device).eval()
        self.classes: List[str] = self._resolve_classes(model)
        if abnormal_classes is None:
            abnormal = [c for c in self.classes
                        if c.lower() not in NEGATIVE_CLASS_NAMES]
        else:
            unknown = [c for c in abnormal_classes if c not in self.classes]
            if unknown:
                raise ValueError(f'abnormal_classes {unknown} are not classes '
                                 f'of the detector {self.classes}')
            abnormal = list(abnormal_classes)
        if not abnormal:
            raise ValueError(f'no abnormal class among {self.classes}: pass '
                             'abnormal_classes')
        self.abnormal_classes = abnormal
        self._abnormal = np.isin(np.asarray(self.classes),
                                 np.asarray(abnormal))
        self.pipeline = test_pipeline_for_arrays(self.cfg)
        self.settings = dict(
            tile_size=int(tile_size), overlap=int(overlap),
            target_mpp=target_mpp, mpp=mpp, backend=backend,
            score_thr=float(score_thr), edge_margin=float(edge_margin),
            use_mask=bool(use_mask), min_tissue=float(min_tissue),
            mask_max_side=int(mask_max_side), precision=precision)
        self.merge_cfg = dict(method=merge, class_aware=bool(class_aware),
                              iou_thr=float(iou_thr), ios_thr=float(ios_thr),
                              centre_dist_um=float(centre_dist_um))
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.top_k = int(top_k)
        self.topk_mean_k = int(topk_mean_k)
        self.cell_feature_size = int(cell_feature_size)
        self.gallery_top_n = int(gallery_top_n)
        self.overview_max_side = int(overview_max_side)
        self.chunk_tiles = max(1, int(chunk_tiles))
        self.write_parquet = bool(write_parquet)
        self.progress = bool(progress)
        self.aggregators = self._build_aggregators()
        self.mil = self._build_mil(mil_config, mil_checkpoint)
        self.thresholds = self._load_thresholds(thresholds)

    # ------------------------------------------------------------------
    # set-up helpers
    def _resolve_classes(self, model) -> List[str]:
        """Class names: the checkpoint's, else the config's dataset
        ``metainfo``, else the dataset class's ``METAINFO``; checked against
        the detector's number of classes (mmdet falls back to COCO names
        when a checkpoint has none)."""
        num = None
        for head in (getattr(model, 'bbox_head', None),
                     getattr(getattr(model, 'roi_head', None), 'bbox_head',
                             None)):
            if head is not None and hasattr(head, 'num_classes'):
                num = int(head.num_classes)
                break
        ds = (self.cfg.get('test_dataloader') or {}).get('dataset') or {}
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
            f'{self.config_path}: no class names for the detector\'s {num} '
            'classes (none in the checkpoint meta, '
            'test_dataloader.dataset.metainfo.classes or the dataset type); '
            'add metainfo=dict(classes=(...)) to the test dataset')

    def _build_aggregators(self) -> Dict[str, torch.nn.Module]:
        from mmpretrain.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return dict(
                max=MODELS.build(dict(type='MaxScoreAggregator')),
                topk_mean=MODELS.build(dict(type='TopKMeanAggregator',
                                            k=self.topk_mean_k)))

    def _build_mil(self, mil_config, mil_checkpoint):
        if mil_config is None:
            return None
        if mil_checkpoint is None or not osp.isfile(str(mil_checkpoint)):
            raise FileNotFoundError(
                f'mil_checkpoint {mil_checkpoint} not found: the slide MIL '
                'model needs the checkpoint trained with '
                f'{mil_config} (tools/train.py)')
        if self.cell_feature_size <= 0:
            raise ValueError('the slide MIL model needs cell features: set '
                             'cell_feature_size > 0')
        from mmengine.runner import load_checkpoint
        from mmpretrain.registry import MODELS
        cfg = Config.fromfile(str(mil_config))
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            mil = MODELS.build(cfg.model)
        load_checkpoint(mil, str(mil_checkpoint), map_location='cpu',
                        strict=True)
        return mil.to(self.device).eval()

    @staticmethod
    def _load_thresholds(thresholds):
        if thresholds is None or isinstance(thresholds, dict):
            return thresholds
        if not osp.isfile(str(thresholds)):
            raise FileNotFoundError(f'thresholds file {thresholds} not found '
                                    '(write it with tools/slide/'
                                    'calibrate_thresholds.py)')
        with open(thresholds) as f:
            return json.load(f)

    def _resume_key(self, slide: Path, dims, read_downsample) -> str:
        key = dict(self.settings, slide=_file_key(str(slide)),
                   dims=list(dims), read_downsample=read_downsample,
                   checkpoint=_file_key(self.checkpoint),
                   config=self.config_path, classes=self.classes)
        return hashlib.sha256(json.dumps(key, sort_keys=True,
                                         default=str).encode()).hexdigest()

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
        rank, world = get_dist_info()
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
        try:
            reader = open_shared(slide, self.settings['backend'],
                                 self.settings['mpp'])
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'cannot open {slide}: {type(e).__name__}: {e}'
            reader = None
        # the same decision on every rank (a file may be half-visible)
        err = self._any_error(err)
        if err is not None:
            return self._failed(slide, err, rank)
        try:
            return self._run_open(slide, sdir, reader, overwrite, t_start)
        finally:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing a broken file
                pass

    def run_key(self) -> dict:
        """What makes a slide's outputs: settings, merge, detector files."""
        return dict(settings=self.settings, merge=self.merge_cfg,
                    config=self.config_path,
                    checkpoint=_file_key(self.checkpoint),
                    classes=self.classes)

    def changed_since(self, report: dict) -> List[str]:
        """What differs between this inferencer and the run that wrote
        ``report`` (``'checkpoint'``, ``'config'``, ``'settings (tile_size:
        512 -> 384)'``...); empty when it is the same."""
        old = report.get('run_key')
        if old is None:  # report of an older version: compare what it has
            det = report.get('detector') or {}
            old = dict(settings=report.get('settings'),
                       merge=report.get('merge'),
                       config=det.get('config'),
                       checkpoint=det.get('checkpoint'),
                       classes=det.get('classes'))
            new = dict(self.run_key(), checkpoint=self.checkpoint)
        else:
            new = self.run_key()
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

    def _any_error(self, err: Optional[str]) -> Optional[str]:
        """First error of any rank (None when all ranks are fine)."""
        _, world = get_dist_info()
        if world == 1:
            return err
        errs = all_gather_object(err)
        return next((e for e in errs if e is not None), None)

    def _failed(self, slide: Path, err: str, rank: int) -> dict:
        if str(slide) not in err:
            err = f'{slide}: {err}'
        report = dict(slide=slide.stem, path=str(slide), status='failed',
                      error=err)
        if rank == 0:
            warnings.warn(f'slide {slide} failed: {err}', stacklevel=3)
        return report

    def _run_open(self, slide: Path, sdir: Path, reader, overwrite: bool,
                  t_start: float) -> dict:
        rank, world = get_dist_info()
        st = self.settings
        err = None
        try:  # a truncated or unsupported file often fails only here
            slide_mpp = st['mpp'] if st['mpp'] is not None else reader.mpp
            read_ds = resolve_read_scale(reader.mpp, st['target_mpp'],
                                         st['mpp'])
            if st['use_mask']:
                mask, mask_ds = tissue_mask(reader,
                                            max_side=st['mask_max_side'])
            else:
                mask, mask_ds = None, None
            plan = plan_tiles(reader.dimensions, st['tile_size'],
                              st['overlap'], read_ds, mask=mask,
                              mask_downsample=mask_ds,
                              min_tissue=st['min_tissue'] if mask is not None
                              else 0.)
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'tissue mask / tile plan: {type(e).__name__}: {e}'
        err = self._any_error(err)
        if err is not None:
            return self._failed(slide, err, rank)
        t_plan = time.perf_counter() - t_start
        partial = sdir / 'partial'
        key = self._resume_key(slide, reader.dimensions, read_ds)

        # rank 0 prepares the folder and decides which tiles are left
        todo_obj = [None, None]
        if rank == 0:
            try:
                todo_obj = [self._prepare(sdir, partial, key, plan, overwrite),
                            uuid.uuid4().hex[:8]]
            except Exception as e:  # noqa: BLE001
                todo_obj = [f'{type(e).__name__}: {e}', None]
        if world > 1:
            broadcast_object_list(todo_obj, src=0)
        todo, run_id = todo_obj
        if isinstance(todo, str):  # reported, the other slides go on
            return self._failed(slide, todo, rank)
        resumed = int(plan.keep.sum()) - len(todo)
        mine = todo[rank::world]

        err, t_model, t_loop, n_read = None, 0., 0., 0
        try:
            t_model, t_loop, n_read = self._detect_tiles(
                slide, plan, read_ds, mine, partial, f'{run_id}_r{rank}')
        except Exception as e:  # noqa: BLE001 - reported, the rest goes on
            err = f'{type(e).__name__}: {e}'
        err = self._any_error(err)
        times = [dict(model=t_model, loop=t_loop, tiles=n_read)]
        if world > 1:
            times = all_gather_object(times[0])
        if err is not None:
            barrier()
            return self._failed(slide, err, rank)
        report = None
        if rank == 0:
            try:
                report = self._finish(slide, sdir, partial, reader, plan,
                                      read_ds, slide_mpp, mask, mask_ds,
                                      times, resumed, t_start, t_plan)
            except Exception as e:  # noqa: BLE001 - reported, the rest goes on
                report = self._failed(
                    slide, f'writing the outputs: {type(e).__name__}: {e} '
                    f'(finished tiles are kept in {partial})', rank)
        barrier()
        if world > 1:
            obj = [report]
            broadcast_object_list(obj, src=0)
            report = obj[0]
        return report

    def _prepare(self, sdir: Path, partial: Path, key: str, plan,
                 overwrite: bool) -> np.ndarray:
        """Create the slide folder; return the tile indices still to do."""
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
            _atomic_json(key_file, dict(key=key, settings=self.settings))
        done = self._load_chunks(partial)['done']
        keep = np.flatnonzero(plan.keep)
        return np.setdiff1d(keep, done).astype(np.int64)

    @staticmethod
    def _load_chunks(partial: Path) -> dict:
        parts, done = [], []
        for f in sorted(partial.glob('chunk_*.npz')):
            with np.load(f) as z:
                done.append(z['done'])
                parts.append({k: z[k] for k in ('bboxes', 'scores', 'labels',
                                                'tiles')})
        return dict(dets=concat_dets(parts),
                    done=np.concatenate(done) if done else np.zeros(
                        0, np.int64))

    def _detect_tiles(self, slide: Path, plan, read_ds: float,
                      tiles: np.ndarray, partial: Path, tag: str):
        """Detect on ``tiles`` (indices into the plan); save chunks."""
        t0 = time.perf_counter()
        if len(tiles) == 0:
            return 0., 0., 0
        base = SlideTileDataset(str(slide), plan.origins[tiles],
                                plan.tile_size, read_ds,
                                backend=self.settings['backend'],
                                mpp=self.settings['mpp'])
        # an in-memory image is sliced in this process (workers would only
        # add their start-up); slide files are read by the worker processes
        workers = 0 if is_decoded(slide, self.settings['mpp']) else \
            self.num_workers
        loader = DataLoader(
            _TilePipelineDataset(base, self.pipeline, tiles),
            batch_size=self.batch_size, num_workers=workers,
            collate_fn=_collate, shuffle=False,
            persistent_workers=False,
            prefetch_factor=2 if workers > 0 else None)
        thr = self.settings['score_thr']
        margin = self.settings['edge_margin']
        t_model, seq = 0., 0
        buf, buf_done = [], []
        origins = torch.from_numpy(plan.origins)
        rank, world = get_dist_info()
        bar = tqdm(total=len(tiles) * world, unit='tile', leave=False,
                   desc=f'{slide.name} (rank 0 of {world})' if world > 1
                   else slide.name, disable=not self.progress or rank != 0)
        for batch in loader:
            tm = time.perf_counter()
            with torch.no_grad():
                results = self.model.test_step(
                    dict(inputs=batch['inputs'],
                         data_samples=batch['data_samples']))
            t_model += time.perf_counter() - tm
            for idx, res in zip(batch['tile_index'], results):
                inst = res.pred_instances
                scores = inst.scores.detach().cpu()
                keep = scores >= thr
                boxes = inst.bboxes.detach().cpu()[keep].float()
                if margin > 0 and len(boxes):
                    inner = drop_edge_boxes(boxes.numpy(), plan.tile_size,
                                            plan.edges[idx], margin)
                    inner = torch.from_numpy(np.asarray(inner, bool))
                else:
                    inner = torch.ones(len(boxes), dtype=torch.bool)
                boxes = boxes[inner] * read_ds + origins[idx].repeat(2)
                n = len(boxes)
                buf.append(dict(
                    bboxes=boxes.numpy().astype(np.float32),
                    scores=scores[keep][inner].numpy().astype(np.float32),
                    labels=inst.labels.detach().cpu()[keep][inner].numpy()
                    .astype(np.int64),
                    tiles=np.full(n, idx, np.int64)))
                buf_done.append(int(idx))
            bar.update(len(batch['tile_index']) * world)
            if len(buf_done) >= self.chunk_tiles:
                self._save_chunk(partial, f'{tag}_{seq:05d}', buf, buf_done)
                seq += 1
                buf, buf_done = [], []
        bar.close()
        if buf_done:
            self._save_chunk(partial, f'{tag}_{seq:05d}', buf, buf_done)
        return t_model, time.perf_counter() - t0, len(tiles)

    @staticmethod
    def _save_chunk(partial: Path, name: str, parts: list,
                    done: list) -> None:
        dets = concat_dets(parts)
        tmp = partial / f'.{name}.tmp.npz'
        np.savez(tmp, done=np.asarray(done, np.int64), **dets)
        os.replace(tmp, partial / f'chunk_{name}.npz')

    def input_warnings(self, dims, read_ds: float, plan) -> List[str]:
        """Why this slide's scores may not be a screening result: an image
        too small to hold cells, or no tissue found."""
        out = []
        w, h = (int(v) for v in dims)
        small = max(32, self.settings['tile_size'] // 4)
        if min(w, h) / float(read_ds) < small:
            out.append(
                f'the image is only {w}x{h} px (level 0), less than {small} '
                'px on a side at the reading resolution: too small to hold '
                'the cells of a slide, so its scores are not a negative '
                'result. Is it the right file (a thumbnail or a cell crop)?')
        elif int(plan.keep.sum()) == 0 and self.settings['use_mask']:
            out.append('no tissue found (every tile is blank glass): the '
                       'slide scores 0 without having been screened; check '
                       'the scan, or run with --no-mask to read every tile')
        return out

    # ------------------------------------------------------------------
    def cell_scores(self, dets: Dict[str, np.ndarray]) -> np.ndarray:
        """Abnormality score of each detection: its score when its class is
        abnormal, else 0. ``float32[N]``."""
        if len(dets['scores']) == 0:
            return np.zeros(0, np.float32)
        return np.where(self._abnormal[dets['labels']], dets['scores'],
                        0.).astype(np.float32)

    @torch.no_grad()
    def cell_features(self, reader, bboxes: np.ndarray,
                      context: float = 1.5) -> np.ndarray:
        """Detector-backbone features of cells: ``float32[K, C]``.

        Each cell is cropped at level 0 around its box (``context`` times
        its larger side), resized to ``cell_feature_size``, normalised by
        the detector's data preprocessor and embedded by its backbone (last
        stage, global average pooled).
        """
        import cv2
        size = self.cell_feature_size
        if len(bboxes) == 0 or size <= 0:
            return np.zeros((0, 0), np.float32)
        cx = (bboxes[:, 0] + bboxes[:, 2]) / 2
        cy = (bboxes[:, 1] + bboxes[:, 3]) / 2
        side = np.maximum(bboxes[:, 2] - bboxes[:, 0],
                          bboxes[:, 3] - bboxes[:, 1]) * context
        side = np.maximum(np.ceil(side), 8).astype(np.int64)
        x0 = np.floor(cx - side / 2).astype(np.int64)
        y0 = np.floor(cy - side / 2).astype(np.int64)
        crops = [cv2.resize(reader.read_region(int(x), int(y), int(s),
                                               int(s), 0), (size, size),
                            interpolation=cv2.INTER_AREA)
                 for x, y, s in zip(x0, y0, side)]  # K <= top_k reads
        rgb = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
        pre = self.model.data_preprocessor
        x = rgb if getattr(pre, '_channel_conversion', False) else \
            rgb.flip(1)  # the detector sees BGR unless it converts
        x = x.to(self.device)
        if getattr(pre, '_enable_normalize', False):
            x = (x - pre.mean) / pre.std
        feats = self.model.backbone(x)
        feat = feats[-1] if isinstance(feats, (list, tuple)) else feats
        return feat.mean(dim=(2, 3)).float().cpu().numpy()

    def slide_scores(self, scores: np.ndarray,
                     feats: Optional[np.ndarray]) -> Dict[str, float]:
        """Slide scores of the top-k cells from every aggregator."""
        s = torch.from_numpy(scores).float()[None]
        mask = torch.ones_like(s, dtype=torch.bool)
        out = {}
        with torch.no_grad():
            for name, agg in self.aggregators.items():
                out[name] = float(agg(s, mask))
            if self.mil is not None:
                out['attention_mil'] = float(self.mil.slide_score_from_bag(
                    s.to(self.device), mask.to(self.device),
                    torch.from_numpy(feats).float()[None].to(self.device)))
        return out

    def _finish(self, slide, sdir, partial, reader, plan, read_ds, slide_mpp,
                mask, mask_ds, times, resumed, t_start, t_plan) -> dict:
        """Merge every chunk of the slide and write the outputs (rank 0)."""
        t0 = time.perf_counter()
        loaded = self._load_chunks(partial)
        raw = loaded['dets']
        merge_cfg = dict(self.merge_cfg)
        keep = merge_detections(raw, mpp=slide_mpp, **merge_cfg)
        dets = sort_dets(index_dets(raw, keep))
        t_merge = time.perf_counter() - t0

        cell_scores = self.cell_scores(dets)
        order = np.argsort(-cell_scores, kind='stable')[:self.top_k]
        top = index_dets(dets, order)
        top_scores = cell_scores[order]
        feats = self.cell_features(reader, top['bboxes']) \
            if self.cell_feature_size > 0 else np.zeros((len(order), 0),
                                                        np.float32)
        slide_scores = self.slide_scores(top_scores, feats)

        table_dets = {k: dets[k] for k in ('bboxes', 'scores', 'labels')}
        write_detections_table(sdir / OUTPUT_FILES['csv'], table_dets,
                               self.classes, mpp=slide_mpp, overwrite=True)
        if self.write_parquet:
            write_detections_table(sdir / OUTPUT_FILES['parquet'], table_dets,
                                   self.classes, mpp=slide_mpp,
                                   overwrite=True)
        write_geojson(sdir / OUTPUT_FILES['geojson'], table_dets,
                      self.classes, mpp=slide_mpp, slide_name=slide.name,
                      overwrite=True)
        np.savez(sdir / OUTPUT_FILES['cells'], bboxes=top['bboxes'],
                 scores=top_scores, det_scores=top['scores'],
                 labels=top['labels'], feats=feats.astype(np.float32),
                 classes=np.asarray(self.classes))
        # gallery / overview rank by the abnormality score
        ranked = dict(bboxes=dets['bboxes'], scores=cell_scores,
                      labels=dets['labels'])
        write_png(sdir / OUTPUT_FILES['gallery'],
                  draw_gallery(reader, ranked, self.classes,
                               top_n=self.gallery_top_n), overwrite=True)
        overview, _ = draw_overview(reader, ranked, self.classes,
                                    max_side=self.overview_max_side,
                                    mask=mask, mask_downsample=mask_ds,
                                    top_n_highlight=self.gallery_top_n)
        write_png(sdir / OUTPUT_FILES['overview'], overview, overwrite=True)

        t_total = time.perf_counter() - t_start
        t_model = float(sum(t['model'] for t in times))
        t_loop = float(max([t['loop'] for t in times] + [0.]))
        n_read = int(sum(t['tiles'] for t in times))
        counts = np.bincount(dets['labels'], minlength=len(self.classes))
        report = dict(
            slide=slide.stem, path=str(slide), status='done',
            reader=type(reader).__name__,
            dimensions=list(reader.dimensions), mpp=slide_mpp,
            read_downsample=read_ds,
            read_mpp=None if slide_mpp is None else slide_mpp * read_ds,
            settings=self.settings, merge=self.merge_cfg,
            detector=dict(config=self.config_path,
                          checkpoint=self.checkpoint, classes=self.classes,
                          abnormal_classes=self.abnormal_classes),
            tiles=dict(total=int(len(plan.keep)), read=n_read,
                       resumed=int(resumed),
                       skipped_blank=int((~plan.keep).sum()),
                       grid=list(plan.grid_shape), size=plan.tile_size,
                       overlap=plan.overlap),
            detections=dict(raw=int(len(raw['scores'])),
                            merged=int(len(dets['scores'])),
                            per_class={c: int(n) for c, n in
                                       zip(self.classes, counts)}),
            top_cells=[dict(rank=i + 1, bbox=[float(v) for v in b],
                            cls=self.classes[int(lb)], score=float(s))
                       for i, (b, lb, s) in enumerate(zip(
                           top['bboxes'][:self.gallery_top_n],
                           top['labels'][:self.gallery_top_n],
                           top_scores[:self.gallery_top_n]))],
            slide_scores=slide_scores,
            timing=dict(total_s=t_total, plan_and_mask_s=t_plan,
                        detect_loop_s=t_loop, model_s=t_model,
                        merge_s=t_merge,
                        outputs_s=time.perf_counter() - t0 - t_merge,
                        detector_busy=t_model / t_loop if t_loop > 0 and
                        len(times) == 1 else None,
                        tiles_per_s=n_read / t_loop if t_loop > 0 else None),
            outputs={k: v for k, v in OUTPUT_FILES.items()
                     if k != 'parquet' or self.write_parquet},
            run_key=json.loads(json.dumps(self.run_key(), default=str)),
            warnings=self.input_warnings(reader.dimensions, read_ds, plan))
        for w in report['warnings']:
            warnings.warn(f'{slide}: {w}', stacklevel=2)
        if self.thresholds is not None:
            from cervdet.evaluation.metrics.slide_screening_metric import call_grade
            agg = self.thresholds.get('aggregator', 'max')
            if agg not in slide_scores:
                raise ValueError(f'the thresholds are for aggregator {agg!r}, '
                                 f'which this run has not computed '
                                 f'({sorted(slide_scores)})')
            report['slide_call'] = dict(
                aggregator=agg, grade=call_grade(slide_scores[agg],
                                                 self.thresholds))
        _atomic_json(sdir / OUTPUT_FILES['report'], report)
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


__all__ = ['SlideInferencer', 'list_slides', 'test_pipeline_for_arrays',
           'sort_dets', 'OUTPUT_FILES']
