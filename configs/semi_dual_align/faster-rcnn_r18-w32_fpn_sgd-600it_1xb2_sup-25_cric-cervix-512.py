# Supervised baseline of the CPU semi-supervised comparison on the real CRIC
# fields (issue 19; Chai et al. Table 1 "Faster R-CNN ... with the same
# labeled data only", Sec. 3.2): the CPU half-width ResNet-18 Faster R-CNN
# (./_base_/faster-rcnn_r18-w32_fpn-64.py) on the 25 % labeled fields of
# split_semi.py (19 of the 151 training fields, seed 0), batch 2 (= the
# labeled half of the semi batch), data and budget of ./_base_/cric_fields.py.
# Not a paper setting (paper: ResNet-101 ImageNet, 1200 px patches, 120k
# iterations, batch 8; Sec. 2.3, 3.1): a CPU size.
_base_ = [
    './_base_/faster-rcnn_r18-w32_fpn-64.py', './_base_/cric_fields.py'
]
train_dataloader = dict(_base_.sup_train_dataloader, _delete_=True)
