# The paper config (./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py,
# Shi et al. as written) on ROIs cut from the real CRIC Cervix fields: one
# ROI per field (688 x 510 here, 1376 x 1020 native, inside the paper's
# 1024-2048 px ROI range), labelled by its worst marked cell (NILM / LSIL /
# HSIL), split per field:
#   python tools/dataset_converters/cric_fields_to_roi_set.py --out-dir data/cric-roi-fields
# Cells: detected (the paper's default, detections/<split>.bbox.json from a
# cell detector run over data/cric-roi-fields/images/<split>/); the CRIC
# marked cells instead: --cfg-options for the three loaders
# dataset.cell_source=annotations dataset.det_file=None (CRIC did not mark
# every cell of a field: the marked cells are a subset).
_base_ = ['./global-local_r50_att-blstm-vit-b_sgd-90e_cervical-roi-1024.py']
cric_fields = dict(data_root='data/cric-roi-fields/')
train_dataloader = dict(dataset=cric_fields)
val_dataloader = dict(dataset=cric_fields)
test_dataloader = dict(dataset=cric_fields)
