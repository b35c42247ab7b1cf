# CPU-sized OICR: a half-width ResNet-18 (base 32 channels) from scratch (no
# download), RoIAlign on its stride-16 stage (128 channels), two 256-wide
# FCs, the 512 mosaics read at 384 px with at most 500 proposals per image.
# Same MIL branch, refinement stages and pseudo labels as the VGG16 config;
# it runs in minutes on 2 CPU cores (configs/oicr/README.md).
_base_ = './oicr_vgg16_adam-24e_cervical-mosaic-bethesda-512.py'
img_scale = (384, 384)
num_max_proposals = 500
model = dict(
    data_preprocessor=dict(std=[58.395, 57.12, 57.375]),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        stem_channels=32,
        base_channels=32,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    feat_levels=None,
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        fc_out_channels=256,
        dropout_ratio=0.2,
        # with pseudo_label='top_ratio': 2 % of the 500 proposals (10 per
        # positive class) before NMS
        top_ratio=0.02))

# The weak 512 pipelines, read at img_scale with num_max_proposals.
train_pipeline = [
    dict(t, num_max_proposals=num_max_proposals)
    if t['type'] == 'LoadProposals' else dict(t, transforms=[
        dict(s, scale=img_scale) if s['type'] == 'Resize' else s
        for s in t['transforms']
    ]) if t['type'] == 'ProposalBroadcaster' else t
    for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, num_max_proposals=num_max_proposals)
    if t['type'] == 'LoadProposals' else dict(t, transforms=[
        dict(s, scale=img_scale) if s['type'] == 'Resize' else s
        for s in t['transforms']
    ]) if t['type'] == 'ProposalBroadcaster' else t
    for t in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))
