# Table 1 row "50 %" of Chai et al. (Sec. 3.2): the paper config with 50 % of
# the labeled images and the same unlabeled set as every row.
_base_ = ['./dual-align_faster-rcnn_r101_fpn_sgd-120k_semi-25_cervical-mosaic-bethesda-512.py']
labeled_percent = 50
labeled_dataset = dict(
    _base_.labeled_dataset,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json')
train_dataloader = dict(
    dataset=dict(datasets=[labeled_dataset, _base_.unlabeled_dataset]))
