"""Write the COCO sets of :func:`cervdet.datasets.cric.build_cric_coco` to
disk in the layout cervdet's CRIC configs read (the output half of
``tools/dataset_converters/cric_to_coco.py``)::

    OUT/annotations/{train,val,test}.json
    OUT/images/            links to (or copies of) the source images
    OUT/splits.csv         field -> split
    OUT/report.txt         the converter's report
"""
import os
import shutil
from pathlib import Path
from typing import Dict, List

from cervdet.datasets.cric import SPLITS, CricReport
from cervdet.utils.json_files import atomic_json


def existing_annotation_files(out_dir: Path) -> List[Path]:
    """The ``annotations/<split>.json`` files already in ``out_dir``."""
    ann_dir = Path(out_dir) / 'annotations'
    return [ann_dir / f'{s}.json' for s in SPLITS
            if (ann_dir / f'{s}.json').exists()]


def write_cric_coco(out_dir: Path, cocos: Dict[str, dict],
                    paths: Dict[str, Path], report: CricReport,
                    link: str = 'symlink') -> List[str]:
    """Write the annotation files, image links, ``splits.csv`` and
    ``report.txt`` of a CRIC conversion.

    Args:
        out_dir (Path): Output folder.
        cocos (dict[str, dict]): COCO dict per split.
        paths (dict[str, Path]): Source image of each field.
        report (CricReport): The conversion's report.
        link (str): How images reach ``OUT/images``: ``'symlink'``,
            ``'copy'`` or ``'none'`` (the config's ``data_prefix`` then
            points at the source folder).

    Returns:
        list[str]: The lines of the report (also in ``report.txt``).
    """
    out = Path(out_dir)
    ann_dir = out / 'annotations'
    ann_dir.mkdir(parents=True, exist_ok=True)
    if link != 'none':
        img_out = out / 'images'
        img_out.mkdir(exist_ok=True)
        for src in paths.values():
            dst = img_out / src.name
            if dst.is_symlink() or dst.exists():
                dst.unlink()
            if link == 'symlink':
                os.symlink(src.resolve(), dst)
            else:
                shutil.copy2(src, dst)
    for sp, coco in cocos.items():  # atomic: a reader never sees half a file
        atomic_json(ann_dir / f'{sp}.json', coco, indent=None)
    split_of = {img['file_name']: sp for sp, c in cocos.items()
                for img in c['images']}
    (out / 'splits.csv').write_text('file_name,split\n' + ''.join(
        f'{k},{v}\n' for k, v in sorted(split_of.items())))
    lines = report.lines()
    (out / 'report.txt').write_text('\n'.join(lines) + '\n')
    return lines


__all__ = ['existing_annotation_files', 'write_cric_coco']
