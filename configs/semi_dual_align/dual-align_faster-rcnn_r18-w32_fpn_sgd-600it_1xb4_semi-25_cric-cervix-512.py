# Dual alignment (Chai et al., ISBI 2022) in the CPU size of the
# comparison on the real CRIC fields (issue 19): 25 % labeled fields + the
# one unlabeled pool of split_semi.py (Sec. 3.2 protocol; 19 + 76 of the 151
# training fields, seed 0), batch 2 labeled + 2 unlabeled (Sec. 2.3 "equally
# sampled"), data and budget of ./_base_/cric_fields.py. The model of
# ./_base_/dual-align.py on the CPU Faster R-CNN with the CPU parts of
# ./dual-align_faster-rcnn_r18-w32_fpn_sgd-300it_1xb4_semi-25_cervical-mosaic-
# bethesda-512.py. Departures from the paper: half-width ResNet-18 from
# scratch instead of ImageNet ResNet-101 (Sec. 3.1); 512x380 fields instead
# of 1200 px patches (Sec. 3.1); 600 iterations instead of 120k (Sec. 2.3);
# softmax proxy loss (Eq. 2): a CPU size.
_base_ = [
    './_base_/faster-rcnn_r18-w32_fpn-64.py', './_base_/cric_fields.py',
    './_base_/dual-align.py'
]
detector = _base_.model
model = dict(
    _base_.dual_align,
    _delete_=True,
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor),
    # the CPU parts (./_base_/faster-rcnn_r18-w32_fpn-64_sgd-300it.py)
    metric_head=dict(_base_.dual_align.metric_head,
                     **_base_.cpu_dual_align.metric_head),
    proxy_loss=dict(_base_.dual_align.proxy_loss,
                    **_base_.cpu_dual_align.proxy_loss),
    semi_train_cfg=dict(_base_.dual_align.semi_train_cfg,
                        **_base_.cpu_dual_align.semi_train_cfg))
optim_wrapper = dict(paramwise_cfg=_base_.dual_align_paramwise_cfg)
