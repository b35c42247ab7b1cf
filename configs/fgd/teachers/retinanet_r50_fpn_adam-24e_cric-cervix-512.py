# Teacher of the LD-WSCCD SSD512 student on the real CRIC fields: RetinaNet
# R50-FPN (ImageNet-initialised), trained with the boxes of the CRIC training
# fields at 512x512, Adam lr 4e-5, 24 epochs. Its P3-P7 (256 channels,
# strides 8-128) match SSD512's levels 0-4. The LD-WSCCD paper does not name
# its teacher (Sec. III.D.2); this is our choice (configs/ld_wsccd/README.md).
_base_ = [
    '../../_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/cric_cervix_weak_512.py',
    '../../_base_/schedules/adam_24e.py', '../../_base_/default_runtime.py'
]
train_dataloader = dict(batch_size=8, num_workers=4)
