from .fgd_distill_hook import (FGDDistillHook, fgd_schedule_weight,
                               student_checkpoint)

__all__ = ['FGDDistillHook', 'fgd_schedule_weight', 'student_checkpoint']
from .dino_freeze_last_layer_hook import (  # noqa: E402
    DINOFreezeLastLayerHook, last_layer_frozen)

__all__ += ['DINOFreezeLastLayerHook', 'last_layer_frozen']
from .check_images_hook import CheckImagesHook  # noqa: E402
from .non_finite_loss_hook import (NonFiniteLossHook,  # noqa: E402
                                   batch_image_paths, non_finite_losses)

__all__ += ['CheckImagesHook', 'NonFiniteLossHook', 'batch_image_paths',
            'non_finite_losses']
