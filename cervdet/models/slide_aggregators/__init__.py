"""Slide-level aggregators of cell scores (mmpretrain scope); the shared
interface is :class:`BaseSlideAggregator`."""
from .attention_mil_aggregator import AttentionMILAggregator
from .base_slide_aggregator import BaseSlideAggregator
from .max_score_aggregator import MaxScoreAggregator, masked_max
from .topk_cells import check_slide_bag, topk_cells
from .topk_mean_aggregator import TopKMeanAggregator, topk_mean

__all__ = [
    'BaseSlideAggregator', 'AttentionMILAggregator', 'MaxScoreAggregator',
    'TopKMeanAggregator', 'masked_max', 'topk_mean', 'topk_cells',
    'check_slide_bag'
]
