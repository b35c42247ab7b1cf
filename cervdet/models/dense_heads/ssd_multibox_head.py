"""SSD's head (MultiBox loss) that can also predict under mmdet 3.3.

mmdet 3.3's :class:`~mmdet.models.dense_heads.SSDHead` cannot predict:
``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
``SSDHead`` never sets (it skips ``AnchorHead.__init__``), so validation and
inference raise ``AttributeError: 'SSDHead' object has no attribute
'loss_cls'`` (open-mmlab/mmdetection issues #11063, #11305, #11780). This
subclass is ``SSDHead`` unchanged (priors, MultiBox loss of LD-WSCCD Eq.
(5)-(7) / SSD: softmax confidence with 3:1 hard negative mining and smooth
L1 localisation over the matched priors) with ``loss_cls = None``: the
softmax branch of the prediction is taken, as SSD intends.
"""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class SSDMultiBoxHead(SSDHead):
    """:class:`mmdet.models.dense_heads.SSDHead` that predicts under mmdet
    3.3 (see the module docstring); same arguments."""

    #: SSD's loss is built in ``loss_by_feat_single``, not as a module; the
    #: prediction code only asks this attribute for ``custom_cls_channels``.
    loss_cls = None


__all__ = ['SSDMultiBoxHead']
