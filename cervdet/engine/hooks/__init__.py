from .check_images_hook import CheckImagesHook
from .dino_freeze_last_layer_hook import DINOFreezeLastLayerHook, last_layer_frozen
from .distillation_hook import (
    DistillationHook,
    FGDDistillHook,
    distill_schedule_weight,
    student_checkpoint,
)
from .non_finite_loss_hook import (
    NonFiniteLossHook,
    batch_image_paths,
    non_finite_losses,
)

__all__ = [
    'DistillationHook', 'FGDDistillHook', 'distill_schedule_weight',
    'student_checkpoint', 'DINOFreezeLastLayerHook', 'last_layer_frozen',
    'CheckImagesHook', 'NonFiniteLossHook', 'batch_image_paths',
    'non_finite_losses'
]
