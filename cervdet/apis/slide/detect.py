"""Tile detection: a slide's tiles through the detector's test pipeline and
``test_step``, kept detections in level-0 coordinates, saved in resume
chunks.

Per tile: the score threshold, the boxes near interior tile edges dropped
(the neighbouring tile holds them whole), tile -> level-0 coordinates.
"""
import copy
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dist import get_dist_info
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cervdet.apis.pipeline_cfg import split_pipelines
from cervdet.datasets.slide_tiles import SlideTileDataset, is_decoded
from cervdet.utils.slide_merge import drop_edge_boxes

from .resume import save_chunk
from .settings import DetectSettings, ReadSettings


class TilePipelineDataset(Dataset):
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


def collate_tiles(batch: List[dict]) -> dict:
    """A batch of :class:`TilePipelineDataset` items: ``inputs`` and
    ``data_samples`` lists (for ``test_step``) and ``tile_index``
    int64[B]."""
    return dict(inputs=[b['inputs'] for b in batch],
                data_samples=[b['data_samples'] for b in batch],
                tile_index=np.asarray([b['tile_index'] for b in batch],
                                      np.int64))


def test_pipeline_for_arrays(cfg: Config) -> List[dict]:
    """The detector's test pipeline, reading from arrays.

    The test (else val) dataloader's pipeline
    (:func:`cervdet.apis.pipeline_cfg.split_pipelines`, mmdet's
    ``get_test_pipeline_cfg``); ``LoadImageFromFile`` becomes
    ``LoadImageFromNDArray`` and annotation loading is dropped (as in
    ``mmdet.apis.inference_detector``).

    Raises:
        ValueError: When the config has no test (or val) pipeline.
    """
    pipeline = next((p for _, p in split_pipelines(cfg)), None)
    if pipeline is None:
        raise ValueError('the detector config has no test_dataloader.dataset'
                         '.pipeline: add the test pipeline of the model')
    out = []
    for step in pipeline:
        name = str(step.get('type', '')).split('.')[-1]
        if name == 'LoadImageFromFile':
            step = dict(type='mmdet.LoadImageFromNDArray')
        elif name in ('LoadAnnotations', 'LoadProposals',
                      'LoadPanopticAnnotations'):
            continue
        out.append(step)
    if str(out[0].get('type', '')).split('.')[-1] != 'LoadImageFromNDArray':
        out.insert(0, dict(type='mmdet.LoadImageFromNDArray'))
    return out


def tile_loader(slide: Path, plan, read_ds: float, tiles: np.ndarray,
                pipeline: List[dict], read: ReadSettings,
                detect: DetectSettings) -> DataLoader:
    """The DataLoader of ``tiles`` (indices into ``plan``) of a slide.

    An in-memory image is sliced in this process (workers would only add
    their start-up); slide files are read by ``num_workers`` processes.
    """
    base = SlideTileDataset(str(slide), plan.origins[tiles], plan.tile_size,
                            read_ds, backend=read.backend, mpp=read.mpp)
    workers = 0 if is_decoded(slide, read.mpp) else detect.num_workers
    return DataLoader(
        TilePipelineDataset(base, pipeline, tiles),
        batch_size=detect.batch_size, num_workers=workers,
        collate_fn=collate_tiles, shuffle=False, persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None)


def tile_detections(result, tile_index: int, plan, read_ds: float,
                    origins: torch.Tensor, detect: DetectSettings) -> dict:
    """The kept detections of one tile in level-0 coordinates.

    Args:
        result (DetDataSample): ``test_step`` output of the tile.
        tile_index (int): Its index in ``plan``.
        plan (TilePlan): The slide's tile plan (``tile_size``, ``edges``).
        read_ds (float): Level-0 px per px of the reading resolution.
        origins (Tensor[T, 2]): Level-0 origins of the plan's tiles.
        detect (DetectSettings): ``score_thr`` and ``edge_margin``.

    Returns:
        dict: ``bboxes`` float32[n, 4], ``scores`` float32[n], ``labels``
        int64[n], ``tiles`` int64[n] (``tile_index``).
    """
    inst = result.pred_instances
    scores = inst.scores.detach().cpu()
    keep = scores >= detect.score_thr
    boxes = inst.bboxes.detach().cpu()[keep].float()
    if detect.edge_margin > 0 and len(boxes):
        inner = drop_edge_boxes(boxes.numpy(), plan.tile_size,
                                plan.edges[tile_index], detect.edge_margin)
        inner = torch.from_numpy(np.asarray(inner, bool))
    else:
        inner = torch.ones(len(boxes), dtype=torch.bool)
    boxes = boxes[inner] * read_ds + origins[tile_index].repeat(2)
    n = len(boxes)
    return dict(
        bboxes=boxes.numpy().astype(np.float32),
        scores=scores[keep][inner].numpy().astype(np.float32),
        labels=inst.labels.detach().cpu()[keep][inner].numpy()
        .astype(np.int64),
        tiles=np.full(n, tile_index, np.int64))


def detect_tiles(model: torch.nn.Module, slide: Path, plan, read_ds: float,
                 tiles: np.ndarray, pipeline: List[dict], read: ReadSettings,
                 detect: DetectSettings, partial: Path,
                 tag: str) -> Tuple[float, float, int]:
    """Detect on ``tiles`` (indices into the plan); save resume chunks.

    Every ``detect.chunk_tiles`` finished tiles go to
    ``partial/chunk_<tag>_<seq>.npz`` (:func:`~.resume.save_chunk`).

    Returns:
        tuple: ``(model seconds, loop seconds, tiles read)``.
    """
    t0 = time.perf_counter()
    if len(tiles) == 0:
        return 0., 0., 0
    loader = tile_loader(slide, plan, read_ds, tiles, pipeline, read, detect)
    t_model, seq = 0., 0
    buf, buf_done = [], []
    origins = torch.from_numpy(plan.origins)
    rank, world = get_dist_info()
    bar = tqdm(total=len(tiles) * world, unit='tile', leave=False,
               desc=f'{slide.name} (rank 0 of {world})' if world > 1
               else slide.name, disable=not detect.progress or rank != 0)
    for batch in loader:
        tm = time.perf_counter()
        with torch.no_grad():
            results = model.test_step(
                dict(inputs=batch['inputs'],
                     data_samples=batch['data_samples']))
        t_model += time.perf_counter() - tm
        for idx, res in zip(batch['tile_index'], results):
            buf.append(tile_detections(res, idx, plan, read_ds, origins,
                                       detect))
            buf_done.append(int(idx))
        bar.update(len(batch['tile_index']) * world)
        if len(buf_done) >= detect.chunk_tiles:
            save_chunk(partial, f'{tag}_{seq:05d}', buf, buf_done)
            seq += 1
            buf, buf_done = [], []
    bar.close()
    if buf_done:
        save_chunk(partial, f'{tag}_{seq:05d}', buf, buf_done)
    return t_model, time.perf_counter() - t0, len(tiles)


__all__ = ['TilePipelineDataset', 'collate_tiles', 'test_pipeline_for_arrays',
           'tile_loader', 'tile_detections', 'detect_tiles']
