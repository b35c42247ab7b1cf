# The Patch Correction Network (PCN) of Fei et al. (MICCAI 2023): an
# mmpretrain ImageClassifier with an SE-ResNeXt-50 (32x4d) backbone on 224x224
# patches, abnormal vs normal (label 0 = normal, 1 = abnormal). Shared by the
# stage-2 config (configs/pcn_retinanet/, as ``model``) and the stage-3 detectors
# (configs/pcn_retinanet/, as ``model.pcn``), so both build the same network.
# ImageNet-initialised as in the paper (Sec. 2.1 "pre-trained", the authors'
# code: Cadene's pretrainedmodels se_resnext50_32x4d). mmpretrain has no
# SE-ResNeXt-50 ImageNet checkpoint, so ``senet://se_resnext50_32x4d``
# (cervdet/utils/senet_checkpoint.py) downloads Cadene's file through
# torch.hub and renames its keys to mmpretrain's. Offline: copy
# se_resnext50_32x4d-a260b3a4.pth into $TORCH_HOME/hub/checkpoints/, or set
#   --cfg-options model.backbone.init_cfg.checkpoint=senet:///path/to/file.pth
# (Cadene, timm or mmpretrain layout); init_cfg=None trains from scratch.
# In stage 3 the PCN's weights come from model.pcn_checkpoint (PCNRetinaNet
# drops this init_cfg).
pcn_model = dict(
    type='ImageClassifier',
    # The PCN's input normalisation; stage 3 converts the detector's crops to it.
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=2,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='SEResNeXt',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        groups=32,
        width_per_group=4,
        se_ratio=16,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained', checkpoint='senet://se_resnext50_32x4d')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=2,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
