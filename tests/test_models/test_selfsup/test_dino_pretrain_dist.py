"""DINOPretrain under MMDistributedDataParallel: a real 2-process gloo run
of tools/dist_train.sh with the ViT CPU config (AdamW, weight-decay
schedule) on real Pap-smear crops; the in-loss teacher update and the
all-reduced centre work there."""
import math

import torch

from conftest import ROOT, free_port, run_tool
from test_configs_ssl import CPU_VIT, _scalars, _tiny_config, tiny_data  # noqa: F401


def test_dist_train_two_processes_vit(tmp_path, tiny_data):  # noqa: F811
    cfg_path = _tiny_config(tmp_path / 'cfg.py', CPU_VIT, tiny_data, True)
    with open(cfg_path, 'a') as f:
        f.write('train_cfg = dict(max_epochs=1, val_interval=1)\n')
    work = tmp_path / 'work'
    run_tool(['bash', ROOT / 'tools' / 'dist_train.sh', cfg_path, 2,
              '--work-dir', work], env=dict(PORT=str(free_port())),
             timeout=600)
    records = _scalars(work)
    train = [r for r in records if 'loss_dino' in r]
    assert len(train) == 2  # 16 tiles / (2 ranks x 4)
    assert all(math.isfinite(r['loss_dino']) for r in train)
    assert any('knn/acc_k3' in r for r in records)
    ck = torch.load(work / 'epoch_1.pth', map_location='cpu')['state_dict']
    # teacher updated once (iteration 1) from the DDP-synchronised student
    key = 'backbone.patch_embed.projection.weight'
    assert not torch.equal(ck['teacher.' + key], ck[key])
    assert ck['loss_module.center'].abs().sum() > 0
