"""The class-agnostic YOLOX cell detector of the ROI classifier (detected
cells, Shi et al. Sec. 2.1): builds, trains a step, reads the CRIC-field
cell files."""

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from conftest import ROOT

CFG = ROOT / 'configs' / 'roi_cls' / 'cell_detector' / \
    'yolox_s_8xb8-300e_cric-roi-fields-cells.py'


def test_yolox_cell_detector_builds_and_computes_losses():
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(CFG))
    assert cfg.model.bbox_head.num_classes == 1
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_items=[3, 1],
                          num_classes=2)
    for sample in data['data_samples']:  # one class: every box is a cell
        sample.gt_instances.labels = sample.gt_instances.labels * 0
    # YOLOX's batch-wise random resize reads the iteration
    MessageHub.get_current_instance().update_info('iter', 0)
    data = model.data_preprocessor(data, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_cls', 'loss_bbox', 'loss_obj'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_yolox_cell_detector_reads_the_field_cells(shared_data, tmp_path):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()
    from cervdet.datasets import roi_sets as cf
    out = tmp_path / 'rois'
    cf.build_cric_field_rois(out, data_root=shared_data, limit=6,
                             progress=False)
    cfg = Config.fromfile(str(CFG))
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = str(out) + '/'
    ds = DATASETS.build(ds_cfg)
    assert len(ds) >= 1 and ds.metainfo['classes'] == ('cell', )
    item = ds[0]
    assert item['inputs'].shape[0] == 3
