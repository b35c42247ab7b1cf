"""Settings of slide screening, one small dataclass per stage.

:class:`SlideSettings` holds one of each; :meth:`SlideSettings.from_kwargs`
takes the flat keyword names of :class:`~cervdet.apis.SlideInferencer` (and
of ``tools/slide_infer.py``'s flags) and puts each into its stage:

- :class:`ReadSettings`: ``tile_size, overlap, target_mpp, mpp, backend,
  use_mask, min_tissue, mask_max_side``;
- :class:`DetectSettings`: ``score_thr, edge_margin, batch_size,
  num_workers, optimize, precision, chunk_tiles, progress``;
- :class:`MergeSettings`: ``merge`` (its ``method``), ``class_aware,
  iou_thr, ios_thr, centre_dist_um``;
- :class:`ScoreSettings`: ``top_k, topk_mean_k, abnormal_classes,
  cell_feature_size, mil_config, mil_checkpoint, thresholds``;
- :class:`OutputSettings`: ``gallery_top_n, overview_max_side,
  write_parquet``.

What changes a slide's detections (the reading, the score threshold, the
edge margin, the precision; :meth:`SlideSettings.result_settings`) is the
``settings`` of ``report.json`` and of the resume key; the merge settings are
its ``merge``.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

MERGE_METHODS = ('nms', 'ios', 'centre')


@dataclass
class ReadSettings:
    """How a slide is read and cut into tiles.

    Args:
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
        backend (str): Slide reader (see
            :func:`cervdet.datasets.slide_readers.open_slide`).
        use_mask (bool): Skip blank glass with a low-resolution tissue mask.
        min_tissue (float): Smallest tissue fraction of a read tile.
        mask_max_side (int): Longest side of the mask thumbnail (px).
    """

    tile_size: int = 512
    overlap: int = 128
    target_mpp: Optional[float] = None
    mpp: Optional[float] = None
    backend: str = 'auto'
    use_mask: bool = True
    min_tissue: float = 0.02
    mask_max_side: int = 1024

    def __post_init__(self) -> None:
        if self.tile_size <= 0 or not 0 <= self.overlap < self.tile_size:
            raise ValueError(f'tile_size={self.tile_size}, overlap='
                             f'{self.overlap}: need tile_size > 0 and 0 <= '
                             'overlap < tile_size')
        self.tile_size, self.overlap = int(self.tile_size), int(self.overlap)
        self.use_mask = bool(self.use_mask)
        self.min_tissue = float(self.min_tissue)
        self.mask_max_side = int(self.mask_max_side)


@dataclass
class DetectSettings:
    """How the tiles go through the detector.

    Args:
        score_thr (float): Lowest kept detection score.
        edge_margin (float): Boxes closer than this (px of the tile) to an
            interior tile edge are dropped (0: keep all, merge only).
        batch_size (int): Tiles per ``test_step``.
        num_workers (int): Reader processes of the DataLoader (0: read in
            the main process).
        optimize (bool): Fold BatchNorms into convs, run channels-last and
            push ``score_thr`` into the dense head (same detections, see
            :mod:`cervdet.apis.inference_speed`); a given ``model`` is
            copied first.
        precision (str): ``'fp32'`` or ``'bf16'`` (bfloat16 autocast of the
            network on CPUs with AMX / AVX512-BF16 or Ampere+ GPUs: faster,
            scores move by ~1e-3).
        chunk_tiles (int): Tiles per resume chunk (finished tiles are saved
            every ``chunk_tiles`` tiles).
        progress (bool): Show a progress bar over the tiles (rank 0; with N
            ranks it counts rank 0's tiles times N).
    """

    score_thr: float = 0.05
    edge_margin: float = 2.0
    batch_size: int = 4
    num_workers: int = 2
    optimize: bool = True
    precision: str = 'fp32'
    chunk_tiles: int = 64
    progress: bool = False

    def __post_init__(self) -> None:
        self.score_thr = float(self.score_thr)
        self.edge_margin = float(self.edge_margin)
        self.batch_size = int(self.batch_size)
        self.num_workers = int(self.num_workers)
        self.chunk_tiles = max(1, int(self.chunk_tiles))
        self.progress = bool(self.progress)


@dataclass
class MergeSettings:
    """How the detections of overlapping tiles are merged (see
    :func:`cervdet.utils.slide_merge.merge_detections`).

    Args:
        method (str): ``'nms'``, ``'ios'`` or ``'centre'`` (keyword
            ``merge`` of the inferencer).
        class_aware (bool): Merge only boxes of the same class.
        iou_thr (float): IoU of ``'nms'``.
        ios_thr (float): Intersection over the smaller box of ``'ios'``.
        centre_dist_um (float): Centre distance of ``'centre'`` (um).
    """

    method: str = 'nms'
    class_aware: bool = True
    iou_thr: float = 0.5
    ios_thr: float = 0.6
    centre_dist_um: float = 6.0

    def __post_init__(self) -> None:
        if self.method not in MERGE_METHODS:
            raise ValueError(f'merge={self.method!r}: choose nms, ios or '
                             'centre')
        self.class_aware = bool(self.class_aware)
        self.iou_thr = float(self.iou_thr)
        self.ios_thr = float(self.ios_thr)
        self.centre_dist_um = float(self.centre_dist_um)


@dataclass
class ScoreSettings:
    """How the cells and the slide are scored.

    Args:
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
    """

    top_k: int = 32
    topk_mean_k: int = 10
    abnormal_classes: Optional[Sequence[str]] = None
    cell_feature_size: int = 64
    mil_config: Optional[str] = None
    mil_checkpoint: Optional[str] = None
    thresholds: Union[str, dict, None] = None

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f'top_k={self.top_k} must be >= 1')
        self.top_k = int(self.top_k)
        self.topk_mean_k = int(self.topk_mean_k)
        self.cell_feature_size = int(self.cell_feature_size)


@dataclass
class OutputSettings:
    """What is drawn and written per slide.

    Args:
        gallery_top_n (int): Cells in the gallery (and highlighted on the
            overview, and listed in the report's ``top_cells``).
        overview_max_side (int): Longest side of the overview picture.
        write_parquet (bool): Also write ``detections.parquet``.
    """

    gallery_top_n: int = 10
    overview_max_side: int = 2048
    write_parquet: bool = True

    def __post_init__(self) -> None:
        self.gallery_top_n = int(self.gallery_top_n)
        self.overview_max_side = int(self.overview_max_side)
        self.write_parquet = bool(self.write_parquet)


#: Keyword names that differ from their dataclass field.
_ALIASES = {'merge': 'method'}


@dataclass
class SlideSettings:
    """The settings of every stage of slide screening."""

    read: ReadSettings = field(default_factory=ReadSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    output: OutputSettings = field(default_factory=OutputSettings)

    @classmethod
    def keywords(cls) -> List[str]:
        """Every flat keyword name :meth:`from_kwargs` accepts."""
        inverse = {v: k for k, v in _ALIASES.items()}
        return [inverse.get(f.name, f.name)
                for group in dataclasses.fields(cls)
                for f in dataclasses.fields(group.default_factory)]

    @classmethod
    def from_kwargs(cls, **kwargs) -> 'SlideSettings':
        """Settings from flat keyword arguments (``tile_size=512,
        merge='nms', top_k=32, ...``); the rest keep their defaults.

        Raises:
            TypeError: On a name no stage has.
            ValueError: On invalid values (checked by each stage).
        """
        groups = {}
        left = dict(kwargs)
        for group in dataclasses.fields(cls):
            names = {f.name for f in dataclasses.fields(group.default_factory)}
            mine = {}
            for key in list(left):
                name = _ALIASES.get(key, key)
                if name in names:
                    mine[name] = left.pop(key)
            groups[group.name] = mine
        if left:
            raise TypeError(f'unknown slide inference settings {sorted(left)}'
                            f'; known: {cls.keywords()}')
        # validated in the order of the original keyword checks
        merge = MergeSettings(**groups['merge'])
        read = ReadSettings(**groups['read'])
        score = ScoreSettings(**groups['score'])
        return cls(read=read, detect=DetectSettings(**groups['detect']),
                   merge=merge, score=score,
                   output=OutputSettings(**groups['output']))

    def result_settings(self) -> dict:
        """The settings that change a slide's detections (report
        ``settings``, part of the resume key)."""
        r, d = self.read, self.detect
        return dict(
            tile_size=r.tile_size, overlap=r.overlap,
            target_mpp=r.target_mpp, mpp=r.mpp, backend=r.backend,
            score_thr=d.score_thr, edge_margin=d.edge_margin,
            use_mask=r.use_mask, min_tissue=r.min_tissue,
            mask_max_side=r.mask_max_side, precision=d.precision)

    def merge_cfg(self) -> dict:
        """Keyword arguments of :func:`merge_detections` (report
        ``merge``)."""
        m = self.merge
        return dict(method=m.method, class_aware=m.class_aware,
                    iou_thr=m.iou_thr, ios_thr=m.ios_thr,
                    centre_dist_um=m.centre_dist_um)


__all__ = ['ReadSettings', 'DetectSettings', 'MergeSettings', 'ScoreSettings',
           'OutputSettings', 'SlideSettings', 'MERGE_METHODS']
