# ./faster-rcnn_r18-w32_fpn_sgd-600it_1xb2_sup-25_cric-cervix-512.py on the 50 %
# labeled fields (38 of the 151 training fields, a superset of the 25 %).
_base_ = ['./faster-rcnn_r18-w32_fpn_sgd-600it_1xb2_sup-25_cric-cervix-512.py']
labeled_percent = 50
train_dataloader = dict(
    dataset=dict(
        ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json'))
