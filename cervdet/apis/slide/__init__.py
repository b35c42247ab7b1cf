"""Whole-slide screening in stages: settings, tile detection, resume,
scoring, outputs (with their file writers) and report, put together by
:class:`SlideInferencer`."""
from .detect import (
    TilePipelineDataset,
    collate_tiles,
    detect_tiles,
    test_pipeline_for_arrays,
)
from .inferencer import SlideInferencer, list_slides, sort_dets
from .outputs import OUTPUT_FILES
from .report import describe, summary_row, write_summary
from .scoring import NEGATIVE_CLASS_NAMES, SlideScorer
from .settings import (
    DetectSettings,
    MergeSettings,
    OutputSettings,
    ReadSettings,
    ScoreSettings,
    SlideSettings,
)
from .writers import (
    TABLE_COLUMNS,
    UM_COLUMNS,
    detections_to_geojson,
    read_detections_table,
    write_detections_table,
    write_geojson,
    write_png,
)

__all__ = [
    'SlideInferencer', 'list_slides', 'sort_dets', 'SlideSettings',
    'ReadSettings', 'DetectSettings', 'MergeSettings', 'ScoreSettings',
    'OutputSettings', 'SlideScorer', 'NEGATIVE_CLASS_NAMES', 'OUTPUT_FILES',
    'TilePipelineDataset', 'collate_tiles', 'detect_tiles',
    'test_pipeline_for_arrays', 'summary_row', 'describe', 'write_summary',
    'TABLE_COLUMNS', 'UM_COLUMNS', 'detections_to_geojson',
    'read_detections_table', 'write_detections_table', 'write_geojson',
    'write_png'
]
