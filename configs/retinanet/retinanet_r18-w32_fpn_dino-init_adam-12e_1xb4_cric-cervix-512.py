# The main job's detector: the CPU RetinaNet on the real CRIC fields started
# from cervdet's own DINO backbone, pre-trained on unlabeled 128 px tiles of
# the CRIC training and validation fields (tools/cric_dino_init.sh; no
# ImageNet weights can be downloaded here). Everything else as the
# from-scratch config. Measured gain: configs/retinanet/README.md.
_base_ = './retinanet_r18-w32_fpn_adam-12e_1xb4_cric-cervix-512.py'
model = dict(
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='data/pretrained/dino_r18-w32_cric-tiles.pth')))
