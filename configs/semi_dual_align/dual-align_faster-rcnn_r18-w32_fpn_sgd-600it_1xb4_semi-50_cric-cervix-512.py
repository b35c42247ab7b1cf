# ./dual-align_faster-rcnn_r18-w32_fpn_sgd-600it_1xb4_semi-25_cric-cervix-512.py
# with the 50 % labeled fields (38 of 151, a superset of the 25 %) and the
# same unlabeled pool (Sec. 3.2).
_base_ = ['./dual-align_faster-rcnn_r18-w32_fpn_sgd-600it_1xb4_semi-25_cric-cervix-512.py']
labeled_percent = 50
labeled_dataset = dict(
    _base_.labeled_dataset,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json')
train_dataloader = dict(
    dataset=dict(datasets=[labeled_dataset, _base_.unlabeled_dataset]))
