# Supervised baseline of Chai et al. Table 1, row "100 %" (Sec. 3.2).
_base_ = ['./faster-rcnn_r101_fpn_sgd-120k_sup-25_cervical-mosaic-bethesda-512.py']
labeled_percent = 100
train_dataloader = dict(
    dataset=dict(
        ann_file=f'annotations/semi/train_labeled_{labeled_percent}.json'))
