# Slide bags of tools/slide_infer.py for the learned slide call: under
# data_root, bags/<slide>/cells_topk.npz (the --out-dir of slide_infer) and
# labels/{train,val,test}.csv ("slide,label" with a header). Override the
# folder with --cfg-options, e.g.
#   --cfg-options train_dataloader.dataset.data_root=DIR \
#       val_dataloader.dataset.data_root=DIR test_dataloader.dataset.data_root=DIR
dataset_type = 'SlideBagDataset'
data_root = 'data/cervical-slide-bags/'
bag_root = 'bags/'
# binary screening labels; for grades use e.g.
# ('NILM', 'ASC-US', 'LSIL', 'ASC-H', 'HSIL', 'SCC') and
# model.aggregator.num_classes=6 (negative = the first class)
slide_classes = ('negative', 'positive')


def _dataset(split):
    return dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'labels/{split}.csv',
        bag_root=bag_root,
        metainfo=dict(classes=slide_classes))


train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_dataset('train'))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_dataset('val'))
test_dataloader = dict(val_dataloader, dataset=_dataset('test'))
# slide AUC, sensitivity at 90 % specificity, triage share at zero missed
# positives -> slide/...
val_evaluator = dict(type='SlideScreeningMetric', specificity=0.9)
test_evaluator = val_evaluator
