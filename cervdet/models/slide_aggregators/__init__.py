from .attention_mil_aggregator import AttentionMILAggregator
from .max_score_aggregator import MaxScoreAggregator, masked_max
from .topk_cells import check_slide_bag, topk_cells
from .topk_mean_aggregator import TopKMeanAggregator, topk_mean

__all__ = [
    'AttentionMILAggregator', 'MaxScoreAggregator', 'TopKMeanAggregator',
    'masked_max', 'topk_mean', 'topk_cells', 'check_slide_bag'
]
