"""Outputs: the files of a screened slide in ``OUT/<slide stem>/``.

``detections.csv`` (and ``.parquet``), ``detections.geojson`` (QuPath),
``cells_topk.npz`` (the top-k cells with features: the input of slide MIL
models), ``gallery.png`` and ``overview.png``; ``report.json`` is written
last by :mod:`.report`. Every file is written atomically
(:mod:`.writers`).
"""
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from cervdet.visualization.slide_drawer import draw_gallery, draw_overview

from .settings import OutputSettings
from .writers import write_detections_table, write_geojson, write_png

#: Names of the files written per slide (in ``OUT/<slide stem>/``).
OUTPUT_FILES = dict(
    csv='detections.csv',
    parquet='detections.parquet',
    geojson='detections.geojson',
    gallery='gallery.png',
    overview='overview.png',
    cells='cells_topk.npz',
    report='report.json')


def written_outputs(settings: OutputSettings) -> Dict[str, str]:
    """The report's ``outputs``: the files this run writes per slide."""
    return {k: v for k, v in OUTPUT_FILES.items()
            if k != 'parquet' or settings.write_parquet}


def write_slide_outputs(sdir: Path, slide_name: str,
                        dets: Dict[str, np.ndarray], scored: dict,
                        classes: Sequence[str], mpp: Optional[float], reader,
                        mask: Optional[np.ndarray],
                        mask_ds: Optional[float],
                        settings: OutputSettings) -> None:
    """Write every file of a slide but the report.

    Args:
        sdir (Path): The slide's output folder.
        slide_name (str): Slide file name (GeoJSON properties and ids).
        dets (dict): Merged detections (``bboxes`` level-0 float32[N, 4],
            ``scores`` float32[N], ``labels`` int64[N]).
        scored (dict): :meth:`~.scoring.SlideScorer.score` of ``dets``.
        classes (Sequence[str]): Class names.
        mpp (float, optional): Level-0 microns per pixel.
        reader (SlideReader): The open slide (gallery crops, thumbnail).
        mask (np.ndarray, optional): bool tissue mask (overview outline).
        mask_ds (float, optional): Level-0 px per mask px.
        settings (OutputSettings): Gallery size, overview size, Parquet.
    """
    table_dets = {k: dets[k] for k in ('bboxes', 'scores', 'labels')}
    write_detections_table(sdir / OUTPUT_FILES['csv'], table_dets, classes,
                           mpp=mpp, overwrite=True)
    if settings.write_parquet:
        write_detections_table(sdir / OUTPUT_FILES['parquet'], table_dets,
                               classes, mpp=mpp, overwrite=True)
    write_geojson(sdir / OUTPUT_FILES['geojson'], table_dets, classes,
                  mpp=mpp, slide_name=slide_name, overwrite=True)
    top = scored['top']
    np.savez(sdir / OUTPUT_FILES['cells'], bboxes=top['bboxes'],
             scores=scored['top_scores'], det_scores=top['scores'],
             labels=top['labels'], feats=scored['feats'].astype(np.float32),
             classes=np.asarray(classes))
    # gallery / overview rank by the abnormality score
    ranked = dict(bboxes=dets['bboxes'], scores=scored['cell_scores'],
                  labels=dets['labels'])
    write_png(sdir / OUTPUT_FILES['gallery'],
              draw_gallery(reader, ranked, classes,
                           top_n=settings.gallery_top_n), overwrite=True)
    overview, _ = draw_overview(reader, ranked, classes,
                                max_side=settings.overview_max_side,
                                mask=mask, mask_downsample=mask_ds,
                                top_n_highlight=settings.gallery_top_n)
    write_png(sdir / OUTPUT_FILES['overview'], overview, overwrite=True)


__all__ = ['OUTPUT_FILES', 'written_outputs', 'write_slide_outputs']
