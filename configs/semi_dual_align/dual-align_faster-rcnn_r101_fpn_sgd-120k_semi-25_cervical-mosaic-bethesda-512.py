# Chai et al., "Deep semi-supervised metric learning with dual alignment for
# cervical cancer cell detection" (ISBI 2022), as the paper writes it:
# - Faster R-CNN with ImageNet-pre-trained ResNet-101 and FPN (Sec. 2.3);
# - one network, no teacher: unlabeled proposals labeled by thresholding the
#   network's own prediction at 0.5 (Eq. 3, Sec. 2.3);
# - proxy alignment Eq. (2)-(3) (denominator without the true class), proxies
#   randomly initialised and trained by SGD at lr 0.01 (Sec. 2.3: the
#   paramwise group below, 2 x the base lr 0.005, decayed with it);
# - prototype alignment Eq. (4)-(8), three terms each, margin 1.0, memory
#   bank of 1024 ground-truth-guided labeled prototypes (Sec. 2.2-2.3);
# - SGD lr 0.005, momentum 0.9, x0.1 every 40k iterations (Sec. 2.3);
# - batch 8 on 2 GPUs, labeled and unlabeled equally sampled: 2 + 2 images
#   per GPU (Sec. 2.3); launch with `tools/dist_train.sh <this config> 2`
#   (one GPU: set train_dataloader.batch_size=8 and sampler.batch_size=8);
# - one constant unlabeled set, labeled 25 % here (Sec. 3.2; _semi-50/75/100
#   configs for the other rows).
# Departures (the README table lists every one, with its section): the data
# (512 mosaics of CRIC cells, 5 Bethesda classes, not the paper's private
# 1200x1200 patches with ASC-US/LSIL/HSIL/AGC, Sec. 3.1), and the values the
# paper does not give: the length (120k iterations), weight decay 1e-4, the
# ramp-up length T of lambda(t) (4000 iterations), the projection head's
# sizes (1024 -> 128), the jitter magnitudes.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/semi_cervical_mosaic_bethesda_512.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/sgd_120k_semi.py',
    './_base_/dual-align.py'
]
detector = _base_.model
detector.backbone.depth = 101
detector.backbone.init_cfg = dict(
    type='Pretrained', checkpoint='torchvision://resnet101')
detector.roi_head.bbox_head.num_classes = 5

# the model of ./_base_/dual-align.py (Eq. 2-8, Sec. 2.2-2.3) on this detector
model = dict(
    _base_.dual_align,
    _delete_=True,
    detector=detector,
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor))
optim_wrapper = dict(paramwise_cfg=_base_.dual_align_paramwise_cfg)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=_base_.max_iters,
                 val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# param_scheduler, optimizer: ../_base_/schedules/sgd_120k_semi.py
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
