# ./mean-teacher_faster-rcnn_r18_fpn_sgd-cpu_semi-25_cric-cervix-512.py with
# the 50 % labeled fields (38 of 151) and the same unlabeled pool.
_base_ = [
    './mean-teacher_faster-rcnn_r18_fpn_sgd-cpu_semi-25_cric-cervix-512.py'
]
labeled_percent = 50
labeled_dataset = dict(
    _base_.labeled_dataset,
    ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json')
train_dataloader = dict(
    dataset=dict(datasets=[labeled_dataset, _base_.unlabeled_dataset]))
