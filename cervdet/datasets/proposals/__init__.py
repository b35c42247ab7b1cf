"""Cell-candidate box proposals for weakly supervised detection (OICR).

OICR-style detectors classify a fixed set of candidate boxes per image; on
natural images these come from Selective Search or EdgeBoxes. Cytology fields
are simpler: objects are stained cells on bright glass, so candidates come
from colour and blob analysis: stain and texture maps
(:mod:`.stain_maps`), blobs, scores and tiers (:mod:`.generator`), and the
files of mmdet's ``proposal_file`` format with their recall
(:mod:`.coco_proposals`). ``tools/dataset_converters/generate_proposals.py``
is the command line.
"""
from .coco_proposals import (
    SPLITS,
    best_overlaps,
    format_stats,
    generate_for_coco,
    load_coco_images,
    proposal_key,
    proposal_recall,
    split_jobs,
)
from .generator import (
    ProposalConfig,
    box_scores,
    dedupe_boxes,
    generate_proposals,
    jitter_boxes,
    nms,
    scale_boxes,
    sliding_windows,
)
from .stain_maps import RGB_FROM_HED, blob_boxes, glass_colour, stain_maps, texture_map

__all__ = [
    'SPLITS', 'best_overlaps', 'format_stats', 'generate_for_coco',
    'load_coco_images', 'proposal_key', 'proposal_recall', 'split_jobs',
    'ProposalConfig', 'box_scores', 'dedupe_boxes', 'generate_proposals',
    'jitter_boxes', 'nms', 'scale_boxes', 'sliding_windows', 'RGB_FROM_HED',
    'blob_boxes', 'glass_colour', 'stain_maps', 'texture_map'
]
