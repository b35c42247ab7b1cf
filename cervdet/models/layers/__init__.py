from .att_blstm import AttBLSTM, masked_softmax, run_packed_rnn
from .base_cell_pooling import BaseCellPooling, check_bag_inputs
from .cell_pseudo_labels import cell_branch_loss, cell_pseudo_targets, select_top_least
from .cell_vit import CellViT
from .gated_attention_mil import GatedAttentionMIL
from .metric_projection_head import MetricProjectionHead
from .oicr_pseudo_labels import (
    PseudoLabels,
    assign_pseudo_labels,
    mil_image_scores,
    mil_loss,
    mine_pseudo_boxes,
    oicr_pseudo_labels,
    segment_softmax,
    weighted_cross_entropy,
)
from .patch_crop import crop_patches, patch_regions
from .prototype_memory_bank import (
    PrototypeMemoryBank,
    class_prototypes,
    soft_class_prototypes,
)
from .rnn_aggregator import RNNAggregator
from .roi_cross_attention import ROICrossAttention
from .topk_suspicious import (
    count_per_image,
    flatten_dense_outputs,
    rank_within_groups,
    select_topk_suspicious,
)

__all__ = [
    'crop_patches', 'patch_regions', 'count_per_image', 'flatten_dense_outputs',
    'rank_within_groups', 'select_topk_suspicious', 'PseudoLabels',
    'assign_pseudo_labels', 'mil_image_scores', 'mil_loss',
    'mine_pseudo_boxes', 'oicr_pseudo_labels', 'segment_softmax',
    'weighted_cross_entropy', 'MetricProjectionHead', 'PrototypeMemoryBank',
    'class_prototypes', 'soft_class_prototypes', 'AttBLSTM', 'masked_softmax',
    'run_packed_rnn', 'cell_branch_loss', 'cell_pseudo_targets',
    'select_top_least', 'CellViT', 'GatedAttentionMIL', 'RNNAggregator',
    'ROICrossAttention', 'BaseCellPooling', 'check_bag_inputs'
]
