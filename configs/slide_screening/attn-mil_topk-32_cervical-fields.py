# Learned slide call: gated attention MIL (Ilse et al., ICML 2018) over the
# 32 top-scoring cells of every slide (cell feature + detector score), binary
# negative / positive, AdamW for a few epochs on CPU.
#   python tools/train.py configs/slide_screening/attn-mil_topk-32_cervical-fields.py
#   python tools/test.py  configs/slide_screening/attn-mil_topk-32_cervical-fields.py CKPT
# cell_feat_channels must match the "feats" width of cells_topk.npz
# (--cfg-options model.aggregator.in_channels=C).
_base_ = ['./_base_/cervical_slide_bags.py', './_base_/slide_mil_runtime.py']
top_k = 32
cell_feat_channels = 256
model = dict(
    type='SlideMILClassifier',
    data_preprocessor=dict(type='SlideBagDataPreprocessor', top_k=top_k),
    aggregator=dict(
        type='AttentionMILAggregator',
        in_channels=cell_feat_channels,
        hidden=128,
        num_classes=1,
        use_scores=True,
        dropout=0.1),
    classes=_base_.slide_classes)
max_epochs = 10
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min_ratio=0.01)
]
auto_scale_lr = dict(base_batch_size=8)
